// A small in-memory Hugging Face hub on 127.0.0.1 for tests. Two servers: the hub itself and a
// "CDN" on another port (another origin), where LFS downloads are redirected and LFS uploads go,
// as on huggingface.co. Endpoints (as huggingface_hub 2.x calls them):
//   GET  /api/models/{repo}[/revision/{rev}]            repo info (+ siblings, blobs=true)
//   GET  /api/models/{repo}/tree/{rev}                   file list (Python's snapshot_download)
//   HEAD|GET /{repo}/resolve/{rev}/{path}                regular: 200 + ETag (git sha1);
//                                                        LFS: 302 to the CDN + X-Linked-Etag/Size
//   POST /api/repos/create, /api/models/{repo}/preupload/{rev}, /{repo}.git/info/lfs/objects/batch,
//        /api/models/{repo}/commit/{rev} (NDJSON), /api/lfs/verify
//   CDN: GET /lfs/{sha256} (Range), PUT /upload/{oid}[/{part}], POST /upload/{oid} (multipart completion)
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredFile {
  content: Buffer;
  lfs: boolean;
  gitOid: string;
  sha256: string;
}

interface Commit {
  sha: string;
  files: Map<string, StoredFile>;
}

interface Repo {
  id: string;
  commits: Commit[];
  refs: Map<string, string>; // branch or tag -> sha
  private: boolean;
  gated: boolean;
}

export interface RequestLog {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  authorization?: string;
  range?: string;
}

export const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const isLfsPath = (path: string, b: Buffer) => /\.(safetensors|bin|pt|gguf)$/.test(path) || b.length > 10_000 || b.subarray(0, 512).includes(0);

export class FakeHub {
  readonly token = `hf_${randomBytes(12).toString('hex')}`;
  url = '';
  cdnUrl = '';
  readonly repos = new Map<string, Repo>();
  readonly log: RequestLog[] = [];
  readonly lfsStore = new Map<string, Buffer>();
  /** path or sha256 -> the next `times` GETs send only `bytes` bytes, then the socket is destroyed. */
  readonly truncate = new Map<string, { times: number; bytes: number }>();
  /** Multipart uploads for LFS objects of at least this many bytes. */
  multipartThreshold = 1 << 20;
  multipartChunk = 256 * 1024;
  private readonly parts = new Map<string, Map<number, Buffer>>();
  private hub?: Server;
  private cdn?: Server;

  async start(): Promise<this> {
    this.hub = createServer((q, r) => this.wrap('hub', q, r));
    this.cdn = createServer((q, r) => this.wrap('cdn', q, r));
    await Promise.all([listen(this.hub), listen(this.cdn)]);
    this.url = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnUrl = `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      if (!s) continue;
      s.closeAllConnections();
      await new Promise<void>((res) => s.close(() => res()));
    }
  }

  /** Creates (or adds a commit to) a repo; returns the new commit sha. */
  addCommit(repoId: string, files: Record<string, Buffer | string>, opts: { branch?: string; private?: boolean; gated?: boolean; replace?: boolean } = {}): string {
    let repo = this.repos.get(repoId);
    if (!repo) {
      repo = { id: repoId, commits: [], refs: new Map(), private: opts.private ?? false, gated: opts.gated ?? false };
      this.repos.set(repoId, repo);
    }
    const branch = opts.branch ?? 'main';
    const parent = repo.refs.get(branch);
    const base = opts.replace || !parent ? new Map<string, StoredFile>() : new Map(this.commit(repo, parent)!.files);
    for (const [path, data] of Object.entries(files)) {
      const content = Buffer.isBuffer(data) ? data : Buffer.from(data);
      const lfs = isLfsPath(path, content);
      const f: StoredFile = { content, lfs, gitOid: gitOid(content), sha256: sha256(content) };
      if (lfs) this.lfsStore.set(f.sha256, content);
      base.set(path, f);
    }
    return this.pushCommit(repo, branch, base);
  }

  tag(repoId: string, tag: string, sha: string): void {
    this.repos.get(repoId)!.refs.set(tag, sha);
  }

  /** Files of `rev` (branch, tag or sha) of a repo. */
  files(repoId: string, rev = 'main'): Map<string, StoredFile> | undefined {
    const repo = this.repos.get(repoId);
    if (!repo) return undefined;
    return this.commit(repo, repo.refs.get(rev) ?? rev)?.files;
  }

  private pushCommit(repo: Repo, branch: string, files: Map<string, StoredFile>): string {
    const sha = randomBytes(20).toString('hex');
    repo.commits.push({ sha, files });
    repo.refs.set(branch, sha);
    return sha;
  }

  private commit(repo: Repo, rev: string): Commit | undefined {
    const sha = repo.refs.get(rev) ?? rev;
    return repo.commits.find((c) => c.sha === sha);
  }

  private wrap(server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse): void {
    const entry: RequestLog = { server, method: req.method ?? '', url: req.url ?? '' };
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    if (req.headers.range) entry.range = req.headers.range;
    this.log.push(entry);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = Buffer.concat(chunks);
        if (server === 'hub') this.onHub(req, res, body);
        else this.onCdn(req, res, body);
      } catch (e) {
        send(res, 500, { error: String(e) });
      }
    });
  }

  /** 401 for a wrong token; for private repos 401 RepoNotFound without the right token (as the hub hides them). */
  private authError(req: IncomingMessage, res: ServerResponse, repo: Repo | undefined, forWrite = false): boolean {
    const auth = req.headers.authorization;
    if (auth && auth !== `Bearer ${this.token}`) {
      send(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'x-error-message': 'Invalid credentials in Authorization header' });
      return true;
    }
    if (forWrite && !auth) {
      send(res, 401, { error: 'You must be authenticated to write' });
      return true;
    }
    if (repo?.private && !auth) {
      send(res, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
      return true;
    }
    return false;
  }

  private onHub(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const u = new URL(req.url ?? '/', this.url);
    const path = u.pathname;
    let m: RegExpExecArray | null;

    if (req.method === 'POST' && path === '/api/repos/create') {
      if (this.authError(req, res, undefined, true)) return;
      const p = JSON.parse(body.toString()) as { name: string; organization?: string; visibility?: string };
      const id = p.organization ? `${p.organization}/${p.name}` : p.name;
      if (this.repos.has(id)) return send(res, 409, { error: 'You already created this model repo', url: `${this.url}/${id}` });
      const repo: Repo = { id, commits: [], refs: new Map(), private: p.visibility === 'private', gated: false };
      this.repos.set(id, repo);
      const ga = Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n');
      this.pushCommit(repo, 'main', new Map([['.gitattributes', { content: ga, lfs: false, gitOid: gitOid(ga), sha256: sha256(ga) }]]));
      return send(res, 200, { url: `${this.url}/${id}`, name: id, id: randomBytes(12).toString('hex') });
    }

    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/preupload\/([^/]+)$/.exec(path)) && req.method === 'POST') {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo, true)) return;
      if (!repo) return send(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      const p = JSON.parse(body.toString()) as { files: { path: string; sample: string; size: number }[] };
      return send(res, 200, {
        files: p.files.map((f) => {
          const sample = Buffer.from(f.sample, 'base64');
          const lfs = /\.(safetensors|bin|pt|gguf)$/.test(f.path) || f.size > 10_000 || sample.includes(0);
          return { path: f.path, uploadMode: lfs ? 'lfs' : 'regular', shouldIgnore: false, oid: null };
        }),
      });
    }

    if ((m = /^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(path)) && req.method === 'POST') {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo, true)) return;
      if (!repo) return send(res, 404, { message: 'Repository not found' });
      const p = JSON.parse(body.toString()) as { operation: string; objects: { oid: string; size: number }[] };
      const objects = p.objects.map((o) => {
        if (this.lfsStore.has(o.oid)) return { oid: o.oid, size: o.size };
        const verify = { href: `${this.url}/api/lfs/verify` };
        if (o.size >= this.multipartThreshold) {
          const header: Record<string, string> = { chunk_size: String(this.multipartChunk) };
          const n = Math.ceil(o.size / this.multipartChunk);
          for (let i = 1; i <= n; i++) header[String(i)] = `${this.cdnUrl}/upload/${o.oid}/${i}?sig=x`;
          return { oid: o.oid, size: o.size, authenticated: true, actions: { upload: { href: `${this.cdnUrl}/upload/${o.oid}?complete=1`, header }, verify } };
        }
        return { oid: o.oid, size: o.size, authenticated: true, actions: { upload: { href: `${this.cdnUrl}/upload/${o.oid}?sig=x` }, verify } };
      });
      return send(res, 200, { transfer: 'basic', objects }, { 'content-type': 'application/vnd.git-lfs+json' });
    }

    if (path === '/api/lfs/verify' && req.method === 'POST') {
      const p = JSON.parse(body.toString()) as { oid: string; size: number };
      const got = this.lfsStore.get(p.oid);
      if (!got || got.length !== p.size) return send(res, 422, { error: 'object not uploaded' });
      return send(res, 200, {});
    }

    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/commit\/([^/]+)$/.exec(path)) && req.method === 'POST') {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo, true)) return;
      if (!repo) return send(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      if (!/application\/x-ndjson/.test(req.headers['content-type'] ?? '')) return send(res, 400, { error: 'expected ndjson' });
      const branch = decodeURIComponent(m[2]!);
      const parent = repo.refs.get(branch);
      const files = new Map(parent ? this.commit(repo, parent)!.files : []);
      const lines = body.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
      if (lines[0]?.key !== 'header' || typeof lines[0].value.summary !== 'string') return send(res, 400, { error: 'missing header line' });
      for (const { key, value } of lines.slice(1)) {
        const p = value.path as string;
        if (key === 'file') {
          const content = Buffer.from(value.content as string, value.encoding === 'base64' ? 'base64' : 'utf8');
          files.set(p, { content, lfs: false, gitOid: gitOid(content), sha256: sha256(content) });
        } else if (key === 'lfsFile') {
          const content = this.lfsStore.get(value.oid as string);
          if (!content) return send(res, 422, { error: `LFS object ${String(value.oid)} was not uploaded` });
          files.set(p, { content, lfs: true, gitOid: gitOid(content), sha256: value.oid as string });
        } else if (key === 'deletedFile') files.delete(p);
        else return send(res, 400, { error: `unknown key ${key}` });
      }
      const sha = this.pushCommit(repo, branch, files);
      return send(res, 200, { commitUrl: `${this.url}/${repo.id}/commit/${sha}`, commitOid: sha, success: true });
    }

    if ((m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(path)) && req.method === 'GET') {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo)) return;
      if (!repo) return send(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
      const rev = decodeURIComponent(m[2] ?? 'main');
      const c = this.commit(repo, rev);
      if (!c) return send(res, 404, { error: `Invalid rev id: ${rev}` }, { 'x-error-code': 'RevisionNotFound', 'x-error-message': `Invalid rev id: ${rev}` });
      const blobs = u.searchParams.get('blobs') === 'true' || u.searchParams.get('blobs') === 'True';
      return send(res, 200, {
        id: repo.id,
        modelId: repo.id,
        sha: c.sha,
        private: repo.private,
        gated: repo.gated ? 'manual' : false,
        siblings: [...c.files].map(([p, f]) =>
          blobs ? { rfilename: p, size: f.content.length, blobId: f.gitOid, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.content.length, pointerSize: 134 } } : {}) } : { rfilename: p },
        ),
      });
    }

    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(\/.*)?$/.exec(path)) && req.method === 'GET') {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo)) return;
      if (!repo) return send(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      const c = this.commit(repo, decodeURIComponent(m[2]!));
      if (!c) return send(res, 404, { error: 'Revision not found' }, { 'x-error-code': 'RevisionNotFound' });
      return send(
        res,
        200,
        [...c.files].map(([p, f]) => ({
          type: 'file',
          oid: f.gitOid,
          size: f.content.length,
          path: p,
          ...(f.lfs ? { lfs: { oid: f.sha256, size: f.content.length, pointerSize: 134 } } : {}),
        })),
      );
    }

    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path)) && (req.method === 'GET' || req.method === 'HEAD')) {
      const repo = this.repos.get(m[1]!);
      if (this.authError(req, res, repo)) return;
      if (!repo) return send(res, 404, 'Repository not found', { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
      if (repo.gated && req.headers.authorization !== `Bearer ${this.token}`) {
        return send(res, 403, 'Access to this model is restricted', { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to model is restricted and you are not in the authorized list' });
      }
      const rev = decodeURIComponent(m[2]!);
      const c = this.commit(repo, rev);
      if (!c) return send(res, 404, 'Revision not found', { 'x-error-code': 'RevisionNotFound', 'x-error-message': 'Invalid rev id' });
      const file = m[3]!.split('/').map(decodeURIComponent).join('/');
      const f = c.files.get(file);
      if (!f) return send(res, 404, 'Entry not found', { 'x-error-code': 'EntryNotFound', 'x-error-message': 'Entry not found', 'x-repo-commit': c.sha });
      const common = { 'x-repo-commit': c.sha, 'accept-ranges': 'bytes' };
      if (f.lfs) {
        res.writeHead(302, {
          ...common,
          location: `${this.cdnUrl}/lfs/${f.sha256}?file=${encodeURIComponent(file)}`,
          'x-linked-etag': `"${f.sha256}"`,
          'x-linked-size': String(f.content.length),
          etag: `"${f.gitOid}"`,
          'content-length': '0',
        });
        return void res.end();
      }
      return this.serveBytes(req, res, f.content, file, { ...common, etag: `"${f.gitOid}"` });
    }

    send(res, 404, { error: `fake hub: no route for ${req.method} ${path}` });
  }

  private onCdn(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const u = new URL(req.url ?? '/', this.cdnUrl);
    let m: RegExpExecArray | null;
    if ((m = /^\/lfs\/([0-9a-f]{64})$/.exec(u.pathname)) && (req.method === 'GET' || req.method === 'HEAD')) {
      const content = this.lfsStore.get(m[1]!);
      if (!content) return send(res, 404, 'NoSuchKey');
      return this.serveBytes(req, res, content, u.searchParams.get('file') ?? m[1]!, { etag: `"${m[1]}"` }, m[1]!);
    }
    if ((m = /^\/upload\/([0-9a-f]{64})\/(\d+)$/.exec(u.pathname)) && req.method === 'PUT') {
      if (req.headers.authorization) return send(res, 400, 'presigned URLs take no Authorization header');
      const parts = this.parts.get(m[1]!) ?? new Map<number, Buffer>();
      parts.set(Number(m[2]), body);
      this.parts.set(m[1]!, parts);
      res.writeHead(200, { etag: `"${sha256(body).slice(0, 32)}"` });
      return void res.end();
    }
    if ((m = /^\/upload\/([0-9a-f]{64})$/.exec(u.pathname)) && req.method === 'PUT') {
      if (req.headers.authorization) return send(res, 400, 'presigned URLs take no Authorization header');
      if (req.headers['transfer-encoding']) return send(res, 411, 'chunked uploads not accepted, send Content-Length');
      if (sha256(body) !== m[1]) return send(res, 400, 'sha256 mismatch');
      this.lfsStore.set(m[1]!, body);
      return send(res, 200, '');
    }
    if ((m = /^\/upload\/([0-9a-f]{64})$/.exec(u.pathname)) && req.method === 'POST') {
      const p = JSON.parse(body.toString()) as { oid: string; parts: { partNumber: number; etag: string }[] };
      const parts = this.parts.get(m[1]!);
      if (!parts) return send(res, 400, 'no parts');
      const ordered = p.parts.map((x) => {
        const b = parts.get(x.partNumber);
        if (!b || `"${sha256(b).slice(0, 32)}"` !== x.etag) throw new Error(`bad part ${x.partNumber}`);
        return b;
      });
      const all = Buffer.concat(ordered);
      if (sha256(all) !== m[1]) return send(res, 400, 'sha256 mismatch after completion');
      this.lfsStore.set(m[1]!, all);
      return send(res, 200, {});
    }
    send(res, 404, 'no route');
  }

  /** 200 or 206 (Range: bytes=N-), with the truncation faults applied. */
  private serveBytes(req: IncomingMessage, res: ServerResponse, content: Buffer, file: string, headers: Record<string, string>, sha?: string): void {
    let start = 0;
    const range = req.headers.range;
    const rm = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (rm) {
      start = Number(rm[1]);
      if (start >= content.length) {
        res.writeHead(416, { 'content-range': `bytes */${content.length}` });
        return void res.end();
      }
    }
    const body = content.subarray(start);
    const h: Record<string, string> = { ...headers, 'content-length': String(body.length), 'content-type': 'application/octet-stream' };
    if (rm) h['content-range'] = `bytes ${start}-${content.length - 1}/${content.length}`;
    res.writeHead(rm ? 206 : 200, h);
    if (req.method === 'HEAD') return void res.end();
    const fault = this.truncate.get(file) ?? (sha ? this.truncate.get(sha) : undefined);
    if (fault && fault.times > 0) {
      fault.times--;
      // Send a prefix, then drop the connection: the client sees a body shorter than Content-Length.
      res.write(body.subarray(0, Math.min(fault.bytes, body.length)), () => setTimeout(() => res.destroy(), 5));
      return;
    }
    res.end(body);
  }
}

function listen(s: Server): Promise<void> {
  return new Promise((res) => s.listen(0, '127.0.0.1', () => res()));
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}
