import path from 'node:path';
import { startChild, waitUntilReady, type ChildHandle } from '../../common/child-process';
import { programArgs } from '../../common/programs';
import { freePort } from '../../stack/ports';
import { productEnvironment, type TestStack } from './stack';

export interface ApiProcess {
  child: ChildHandle;
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
}

/** The product's API process (api/server.ts) against the test stack, answering /healthz when returned. */
export async function startApiProcess(stack: TestStack, name: string, env: NodeJS.ProcessEnv = {}): Promise<ApiProcess> {
  const port = await freePort();
  const childEnv = { ...productEnvironment(stack), DR_API_PORT: String(port), ...env };
  const child = startChild({ name, command: process.execPath, args: programArgs('api', childEnv), logFile: path.join(stack.dir, `${name}.log`), env: childEnv });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(child, async () => {
    const response = await fetch(`${url}/healthz`);
    if (!response.ok) throw new Error(`healthz answered ${response.status}`);
  });
  return { child, url };
}
