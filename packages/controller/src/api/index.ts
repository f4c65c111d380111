// The controller's HTTP API: the app factory and what it is handed.
export { createApiApp } from './app.js';
export { API_EVENTS, DEFAULT_MAX_BODY_BYTES, type ApiDeps, type ApiEvent } from './deps.js';
export { API_ERROR_CODES, API_ERROR_STATUS, ApiError, isApiError, type ApiErrorCode, type Problem } from './errors.js';
export { OPENAPI_DOCUMENT } from './openapi.js';
