// The OpenAPI 3.1 description served at /v1/openapi.json: request schemas from the zod schemas the routes check,
// response schemas from zod schemas checked against the flows' report types at compile time (openapi/shape.ts).
// api/app.test.ts checks that it names exactly the routes the app has; api/contract.test.ts that every answer the
// app gives is one it describes.
import { componentSchemas } from './openapi/components.js';
import { PATHS } from './openapi/paths.js';

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'hostfiles controller',
    version: '1.1.0',
    description:
      'Keeps the vTPM state and NVRAM files of VMs true to the controller database across KVM hosts. ' +
      'Every route but GET /v1/health needs `Authorization: Bearer <token>`.',
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: componentSchemas(),
  },
  paths: PATHS,
} as const;
