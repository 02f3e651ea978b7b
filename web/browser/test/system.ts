// Runs the one-process system (cmd/charla) for the browser tests: a temporary SQLite
// database, free loopback ports, DEMO=true (so the demo sign-in is on), and a restart that
// keeps the database and the ports.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Returns a free loopback port (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** The charla binary: CHARLA_BIN, or one built now from ./cmd/charla. */
function binary(dir: string): string {
  if (process.env.CHARLA_BIN) return process.env.CHARLA_BIN;
  const out = join(dir, "charla");
  const r = spawnSync("go", ["build", "-o", out, "./cmd/charla"], { cwd: repoRoot, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`go build ./cmd/charla failed with status ${r.status}`);
  return out;
}

/** A running one-process Charla. */
export class Charla {
  private proc: ChildProcess | undefined;
  private log: string[] = [];

  private constructor(
    private readonly bin: string,
    private readonly dir: string,
    readonly edgePort: number,
    readonly rpcPort: number,
  ) {}

  /** Builds (unless CHARLA_BIN is set) and starts the system; resolves once /ready answers 200. */
  static async start(): Promise<Charla> {
    const dir = mkdtempSync(join(tmpdir(), "charla-browser-"));
    const c = new Charla(binary(dir), dir, await freePort(), await freePort());
    await c.startProcess();
    return c;
  }

  /** The page's URL. */
  get url(): string {
    return `http://127.0.0.1:${this.edgePort}/`;
  }

  /** The last lines the process wrote, for failure messages. */
  output(): string {
    return this.log.slice(-40).join("");
  }

  private async startProcess(): Promise<void> {
    const proc = spawn(this.bin, [], {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? this.dir,
        DEMO: "true",
        EDGE_ADDR: `127.0.0.1:${this.edgePort}`,
        RPC_ADDR: `127.0.0.1:${this.rpcPort}`,
        DATABASE_URL: `sqlite://${join(this.dir, "charla.db")}`,
        LOG_LEVEL: "warn",
        DRAIN_TIMEOUT: "3s",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const keep = (b: Buffer) => {
      this.log.push(b.toString());
      if (this.log.length > 400) this.log.splice(0, 200);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    const exited = new Promise<never>((_, rej) =>
      proc.once("exit", (code) => rej(new Error(`charla exited with ${code} before it was ready:\n${this.output()}`))),
    );
    await Promise.race([this.waitReady(), exited]);
  }

  private async waitReady(): Promise<void> {
    for (let i = 0; i < 240; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.edgePort}/ready`);
        if (res.status === 200) {
          // The demo sign-in is mounted after the demo data is seeded.
          const demo = await fetch(`http://127.0.0.1:${this.edgePort}/demo/users`);
          if (demo.status === 200) return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`charla was not ready within 60 s:\n${this.output()}`);
  }

  /** Stops the process with SIGTERM (the edge closes every connection with 1001). */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const done = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    await done;
  }

  /** Stops and starts again on the same database and ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.startProcess();
  }

  /** Starts the process again after stop. */
  async startAgain(): Promise<void> {
    await this.startProcess();
  }

  /** Stops the process and removes its files. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A demo user's session (the same endpoint the sign-in page uses). */
  async demoSession(userName: string): Promise<{ token: string; userId: number }> {
    const res = await fetch(`http://127.0.0.1:${this.edgePort}/demo/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userName }),
    });
    if (!res.ok) throw new Error(`demo session for ${userName}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { token: string; userId: number };
  }

  /** Calls an internal RPC with Connect's JSON encoding. */
  async rpc<T>(method: string, body: unknown): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.rpcPort}/${method}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }
}
