// The one error the agent's request pipeline throws; app.onError turns it into the protocol's error body.
import { HTTP_STATUS, type RequestErrorCode } from '@hostfiles/shared';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly status: (typeof HTTP_STATUS)[RequestErrorCode];
  constructor(
    readonly code: RequestErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.status = HTTP_STATUS[code];
  }
}

export const isAgentError = (error: unknown): error is AgentError => error instanceof AgentError;
