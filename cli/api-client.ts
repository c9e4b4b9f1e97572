/**
 * The HTTP API as the CLI calls it: a bearer token, JSON in and out, and every refusal turned into
 * an error that says what the API said (its problem+json detail) rather than a status code alone.
 */
export class ApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
    super(`${status} ${text(body.title ?? '')}: ${text(body.detail ?? body)}`);
    this.name = 'ApiRefusal';
  }
}

export class ApiUnreachable extends Error {
  constructor(url: string, cause: unknown) {
    super(`cannot reach the API at ${url}: ${(cause as Error).message}; is \`npm start\` running, or DR_API_URL set?`);
    this.name = 'ApiUnreachable';
  }
}

export interface ApiClient {
  url: string;
  get(route: string): Promise<Record<string, unknown>>;
  post(route: string, body?: unknown): Promise<Record<string, unknown>>;
  delete(route: string): Promise<Record<string, unknown>>;
  /** A body sent as it is (runbook YAML), with its content type; answers the response's text. */
  send(route: string, text: string, contentType: string): Promise<string>;
  text(route: string): Promise<string>;
}

export function apiClient(url: string, token: string): ApiClient {
  async function call(method: string, route: string, body?: string, contentType?: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(contentType ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new ApiUnreachable(url, error);
    }
    if (res.status >= 400) {
      const text = await res.text();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { detail: text.slice(0, 500) };
      }
      throw new ApiRefusal(res.status, parsed);
    }
    return res;
  }
  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;
  return {
    url,
    get: async (route) => json(await call('GET', route)),
    post: async (route, body) => json(await call('POST', route, JSON.stringify(body ?? {}), 'application/json')),
    delete: async (route) => json(await call('DELETE', route)),
    send: async (route, text, contentType) => (await call('POST', route, text, contentType)).text(),
    text: async (route) => (await call('GET', route)).text(),
  };
}
