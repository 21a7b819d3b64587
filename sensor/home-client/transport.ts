/**
 * How the sensor talks to home, as the uploader and the heartbeat see it: one JSON request to the
 * home currently in use. `HomeLink` implements it over mutually authenticated HTTPS (undici);
 * tests may implement it over plain HTTP on loopback. A transport failure (no answer, timeout, TLS
 * refusal) rejects with a `HomeTransportError`; an HTTP error status resolves with that status.
 */

export interface HomeResponse {
  readonly status: number;
  /** Parsed JSON, or the text when the answer was not JSON, or undefined when empty. */
  readonly body: unknown;
  /** The home (base URL) that answered. */
  readonly home: string;
  /** Response headers, lower-case names (the uploader honours `retry-after`). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

export interface HomeRequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface HomeTransport {
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, opts?: HomeRequestOptions): Promise<HomeResponse>;
}

export class HomeTransportError extends Error {
  /** `E_HOME_UNREACHABLE`, `E_HOME_TIMEOUT`, `E_HOME_TLS` (certificate not home's, pin mismatch), `E_HOME_PROXY`. */
  constructor(readonly code: string, message: string, readonly home?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
