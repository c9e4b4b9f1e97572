import assert from 'node:assert/strict';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The API as an operator's script uses it: JSON calls with a bearer token, runbook submission, waiting for an operation's end. */
export function apiCalls(url: () => string, defaultToken: string) {
  const call = async (method: string, route: string, body?: unknown, token: string | null = defaultToken) => {
    const res = await fetch(`${url()}${route}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  async function submitRunbook(text: string): Promise<void> {
    const res = await fetch(`${url()}/runbooks`, { method: 'POST', headers: { authorization: `Bearer ${defaultToken}`, 'content-type': 'application/yaml' }, body: text });
    assert.equal(res.status, 201, await res.text());
  }

  /** Polls the operation's status URL until it is no longer running. */
  async function operationResult(workflowId: string): Promise<{ status: string; result: unknown }> {
    for (;;) {
      const { body } = await call('GET', `/operations/${encodeURIComponent(workflowId)}`);
      if (body.status !== 'RUNNING') return { status: String(body.status), result: body.result };
      await sleep(300);
    }
  }

  return { call, submitRunbook, operationResult };
}

export type ApiCalls = ReturnType<typeof apiCalls>;
