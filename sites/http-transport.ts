import http from 'node:http';
import https from 'node:https';

/**
 * Requests to a site's API over node:http with kept-alive connections. Not `fetch`: a failover
 * makes about ten site calls per VM, and the failover-overhead bench's CPU profile of the
 * recovery site's worker (1,000 VMs) spent 8 of its 26 busy seconds inside fetch (web streams,
 * body cloning, abort signals), more than in Temporal's worker; node:http does the same exchange
 * in a fraction of that (bench/results/README.md).
 */
export interface SiteHttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string | Buffer;
  timeoutMs: number;
}

export interface SiteHttpAnswer {
  status: number;
  body: Buffer;
}

/** Connections kept per site client: enough for a worker's activities and a rehydration's parallel writes. */
const MAX_SOCKETS = 256;

export class SiteHttpTransport {
  private readonly agent: http.Agent;
  private readonly module: typeof http | typeof https;

  constructor(url: string) {
    const secure = new URL(url).protocol === 'https:';
    this.module = secure ? https : http;
    // LIFO keeps reusing the most recent connections, so the rest idle out at the server.
    const options: http.AgentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: 'lifo' };
    this.agent = secure ? new https.Agent(options) : new http.Agent(options);
  }

  /**
   * One exchange. A kept-alive connection the site closed while it idled fails at its first
   * reuse with ECONNRESET before the site saw anything: that one case is sent again on a new
   * connection of its own (Node's documented remedy, `request.reusedSocket`), not one from the pool,
   * where other connections may have idled out too (a failback's check of 10,000 disks, reading 32
   * at once, met two in a row, and started over); every other failure rejects.
   */
  async request(request: SiteHttpRequest): Promise<SiteHttpAnswer> {
    try {
      return await this.once(request, this.agent);
    } catch (error) {
      if (error instanceof StaleConnection) return this.once(request, false);
      throw error;
    }
  }

  private once({ method, url, headers, body, timeoutMs }: SiteHttpRequest, agent: http.Agent | false): Promise<SiteHttpAnswer> {
    return new Promise((resolve, reject) => {
      const sent = this.module.request(
        url,
        { method, agent, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(timer);
            resolve({ status: response.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) });
          });
          response.on('error', fail);
          response.on('close', () => {
            if (!response.complete) fail(new Error('the site closed the connection before its answer was complete'));
          });
        },
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(sent.reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? new StaleConnection() : error);
      };
      const timer = setTimeout(() => sent.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      sent.on('error', fail);
      sent.end(body);
    });
  }
}

class StaleConnection extends Error {
  constructor() {
    super('a kept-alive connection was closed by the site');
  }
}
