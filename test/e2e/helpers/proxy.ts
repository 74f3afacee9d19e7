/**
 * A loopback TCP relay in front of the API server that counts connections: a function pointed at it that opens
 * none has sent nothing at all, not even a read. TLS passes through untouched (the serving certificate names
 * 127.0.0.1, whatever the port).
 */
import * as net from 'net';

export class CountingRelay {
  private connections = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(target: URL) {
    this.server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect(Number(target.port), target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  /** A relay on a free loopback port to the API server at `target`. */
  static async start(target: URL): Promise<CountingRelay> {
    const relay = new CountingRelay(target);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Connections opened through the relay since it started. */
  get connectionCount(): number {
    return this.connections;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
