/**
 * A loopback HTTP proxy in front of the S3 server that misbehaves on purpose, by rules a test sets
 * and clears while it runs: S3 errors (503 SlowDown, 500), credentials refused (403 AccessDenied), connections reset before any answer,
 * answers delayed, answers lost after the server acted on the request (the nastiest case
 * for idempotency: the PUT is stored, the client sees a failure and tries again), and requests of
 * one kind held until the test lets them through (an operation stopped at a known point). The product is
 * pointed at it as at any endpoint (`S3_ENDPOINT`); nothing in the product knows it is there.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Testbed } from './testbed';

export interface FaultRules {
  /** Share of requests answered with an S3 error instead of reaching the server. */
  errorRate?: number;
  /** 503 SlowDown by default, as S3 answers when throttling. */
  errorStatus?: 500 | 503;
  /** Share of requests whose connection is reset before the server sees them. */
  resetRate?: number;
  /** Share of requests held for `stallMs` before they are forwarded. */
  stallRate?: number;
  stallMs?: number;
  /** Share of requests forwarded and acted on by the server, whose answer is then dropped (connection reset). */
  lostAnswerRate?: number;
  /** Every request reset: the store is unreachable. */
  unreachable?: boolean;
  /** Every request answered 403 AccessDenied, as S3 answers credentials revoked or a policy that no longer allows them. */
  accessDenied?: boolean;
  /** Requests of this method whose path matches are held, unanswered, until the rules change; then they go on under the new rules. */
  hold?: { method: string; path: RegExp };
}

/** The S3 error answers the proxy gives, with their XML codes and messages. */
const S3_ERRORS = {
  403: ['AccessDenied', 'Access Denied.'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  503: ['SlowDown', 'Please reduce your request rate.'],
} as const;

/** A proxy in front of the testbed's store, and the named sites' workers started to reach the store only through it, as they would a real endpoint. */
export async function siteWorkersBehindProxy({ stack, sites, workers }: Pick<Testbed, 'stack' | 'sites' | 'workers'>, names: string[]): Promise<S3FaultProxy> {
  const proxy = await S3FaultProxy.start(stack.s3Settings.endpoint);
  for (const name of names) await workers.site(sites.site(name), name, { S3_ENDPOINT: proxy.url });
  return proxy;
}

/** The flaky store of issue 17: 10% of requests fail, 5% stall for 2 s, and some answers are lost after the store acted. */
export const FLAKY_STORE: FaultRules = { errorRate: 0.1, stallRate: 0.05, stallMs: 2_000, lostAnswerRate: 0.03 };

export interface FaultCounts {
  forwarded: number;
  errors: number;
  refusals: number;
  resets: number;
  stalls: number;
  lostAnswers: number;
  held: number;
}

export class S3FaultProxy {
  private rules: FaultRules = {};
  readonly counts: FaultCounts = { forwarded: 0, errors: 0, refusals: 0, resets: 0, stalls: 0, lostAnswers: 0, held: 0 };
  private held: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    private readonly upstream: URL,
    readonly url: string,
  ) {}

  /** A proxy on a free loopback port forwarding to `upstreamEndpoint` (e.g. `http://127.0.0.1:8333`). */
  static async start(upstreamEndpoint: string): Promise<S3FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new S3FaultProxy(server, new URL(upstreamEndpoint), `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res));
    return proxy;
  }

  setRules(rules: FaultRules): void {
    this.rules = rules;
    const held = this.held;
    this.held = [];
    for (const handleAgain of held) handleAgain();
  }

  clear(): void {
    this.setRules({});
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const rules = this.rules;
    if (rules.hold && req.method === rules.hold.method && rules.hold.path.test(req.url ?? '')) {
      this.counts.held++;
      this.held.push(() => this.handle(req, res));
      return;
    }
    const chance = (rate: number | undefined) => rate !== undefined && Math.random() < rate;
    if (rules.unreachable || chance(rules.resetRate)) {
      this.counts.resets++;
      req.socket.destroy();
      return;
    }
    if (rules.accessDenied) {
      this.counts.refusals++;
      answerError(req, res, 403);
      return;
    }
    if (chance(rules.errorRate)) {
      this.counts.errors++;
      answerError(req, res, rules.errorStatus ?? 503);
      return;
    }
    const loseAnswer = chance(rules.lostAnswerRate);
    const forward = () => this.forward(req, res, loseAnswer);
    if (chance(rules.stallRate)) {
      this.counts.stalls++;
      setTimeout(forward, rules.stallMs ?? 2_000);
    } else {
      forward();
    }
  }

  private forward(req: IncomingMessage, res: ServerResponse, loseAnswer: boolean): void {
    this.counts.forwarded++;
    const upstream = request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (loseAnswer) {
          this.counts.lostAnswers++;
          answer.resume();
          answer.once('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.once('error', () => req.socket.destroy());
    req.pipe(upstream);
  }
}

/** An S3 error answer, sent once the request's body has been read (as S3 does). */
function answerError(req: IncomingMessage, res: ServerResponse, status: keyof typeof S3_ERRORS): void {
  const [code, message] = S3_ERRORS[status];
  req.resume();
  req.once('end', () => res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`));
}
