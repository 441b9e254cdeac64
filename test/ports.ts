/** TCP ports for tests, always on 127.0.0.1: a server listening on a fresh port, and a port nobody listens on. */
import net from 'node:net';

/** Starts `server` on 127.0.0.1 (`port` 0: a fresh one) and resolves with its port. */
export async function listenLocal(server: net.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

/** A port that was free a moment ago (bound, then released): for "nobody listens there" and for a server started later. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  const port = await listenLocal(probe);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
