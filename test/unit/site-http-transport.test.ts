import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { SiteHttpTransport } from '../../sites/http-transport';

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  sockets.forEach((s) => s.destroy());
  servers.forEach((s) => s.close());
});

/**
 * A raw TCP server standing in for a site, so that a test decides what each connection does with
 * each request: `onRequest(connection number, request number on it, socket)`.
 */
async function rawSite(onRequest: (connection: number, request: number, socket: Socket) => void): Promise<{ url: string; requests: () => number }> {
  let connections = 0;
  let requests = 0;
  const server = createServer((socket) => {
    // Kept-alive connections hold the test process open: each ends with the tests.
    sockets.push(socket);
    const connection = ++connections;
    let onThis = 0;
    let buffered = '';
    socket.on('data', (data) => {
      buffered += data.toString('latin1');
      // Every request in these tests is a bodiless GET: its head ends the request.
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        requests++;
        onRequest(connection, ++onThis, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, requests: () => requests };
}

const answer = (socket: Socket, body: string) => socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`);


describe('a site HTTP transport', () => {
  it('sends a request again on a new connection when a kept-alive one turns out closed at its reuse', async () => {
    const site = await rawSite((connection, request, socket) => {
      if (connection === 1 && request === 2) socket.resetAndDestroy();
      else answer(socket, `{"connection":${connection}}`);
    });
    const transport = new SiteHttpTransport(site.url);
    const get = () => transport.request({ method: 'GET', url: new URL(`${site.url}/api/vms`), headers: {}, timeoutMs: 5_000 });
    assert.equal((await get()).body.toString(), '{"connection":1}');
    const second = await get();
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), '{"connection":2}');
    assert.equal(site.requests(), 3);
  });

  it('sends it again on a connection of its own, not on another kept-alive one that may have idled out too', async () => {
    const site = await rawSite((connection, request, socket) => {
      if (connection <= 2 && request === 2) socket.resetAndDestroy();
      else answer(socket, `{"connection":${connection}}`);
    });
    const transport = new SiteHttpTransport(site.url);
    const get = () => transport.request({ method: 'GET', url: new URL(`${site.url}/api/vms`), headers: {}, timeoutMs: 5_000 });
    // Two at once: two kept-alive connections in the pool, each closed by the site at its next use.
    await Promise.all([get(), get()]);
    const again = await get();
    assert.equal(again.body.toString(), '{"connection":3}');
    assert.equal(site.requests(), 4);
  });

  it('does not send again what failed on a fresh connection', async () => {
    const site = await rawSite((_connection, _request, socket) => socket.resetAndDestroy());
    const transport = new SiteHttpTransport(site.url);
    await assert.rejects(transport.request({ method: 'GET', url: new URL(`${site.url}/api/vms`), headers: {}, timeoutMs: 5_000 }), /ECONNRESET|socket hang up/);
    assert.equal(site.requests(), 1);
  });

  it('rejects an answer cut short and one that never comes', async () => {
    const site = await rawSite((connection, _request, socket) => {
      if (connection === 1) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"trunc');
      // The second connection never answers.
    });
    const transport = new SiteHttpTransport(site.url);
    await assert.rejects(transport.request({ method: 'GET', url: new URL(`${site.url}/a`), headers: {}, timeoutMs: 5_000 }), /closed the connection before its answer was complete|aborted/);
    await assert.rejects(transport.request({ method: 'GET', url: new URL(`${site.url}/b`), headers: {}, timeoutMs: 200 }), /no answer within 200 ms/);
  });
});
