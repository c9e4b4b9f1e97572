/**
 * A worker's liveness probe for whatever supervises it (a Kubernetes livenessProbe, a load
 * balancer's health check, systemd, Nomad): with DR_WORKER_HEALTH_PORT set, `GET /healthz` answers
 * 200 while the worker runs and 503 from the moment it starts shutting down or has failed; before
 * it polls, also 503. Any other path is 404. Nothing else is served.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { State } from '@temporalio/worker';
import type { Logger } from '../common/logger';

export interface Liveness {
  /** The port it listens on (the one asked for, or the one the system chose for port 0). */
  port: number;
  close(): Promise<void>;
}

export async function serveLiveness({ host, port }: { host: string; port: number }, state: () => State, log: Logger): Promise<Liveness> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only GET /healthz is served here' }));
      return;
    }
    const now = state();
    const alive = now === 'RUNNING';
    res.writeHead(alive ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: alive ? 'ok' : 'unavailable', state: now }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ url: `http://${host}:${bound}/healthz` }, 'liveness probe listening');
  return { port: bound, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
