import net from 'node:net';

/** A currently free TCP port on 127.0.0.1 (the OS picks it), for servers started by tests. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves when something accepts TCP connections on host:port, else rejects. */
export function tcpReachable(host: string, port: number, timeoutMs = 1_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (error?: Error) => {
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`timeout connecting to ${host}:${port}`)));
    socket.once('connect', () => done());
    socket.once('error', done);
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free port p whose gRPC companion p + 10000 is free too, as are the `count - 1` ports after p and
 * their companions (the SeaweedFS components the launcher puts beside its S3 port). SeaweedFS
 * derives some of its gRPC ports that way whatever the flags say, so its components need both.
 * Picked below the kernel's ephemeral range (32768 and up): the ports other processes get from the
 * OS, for their listeners and their outgoing connections, never collide with these.
 */
export async function freePortWithGrpcCompanion(count = 1): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (12_000 - count));
    const ports = Array.from({ length: count }, (_, i) => port + i).flatMap((p) => [p, p + 10_000]);
    let free = true;
    for (const p of ports) if (!(free = await portFree(p))) break;
    if (free) return port;
  }
  throw new Error(`no free run of ${count} port(s) p.. with their companions p + 10000 found on 127.0.0.1`);
}
