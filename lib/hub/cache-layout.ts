// The Hugging Face cache layout, shared with Python's huggingface_hub (file_download.py):
//
//   <cache>/models--org--name/
//     blobs/<etag>                 file contents; etag = sha256 for LFS files, git blob sha1 otherwise
//     blobs/<etag>.incomplete      a partial download (ours; resumed with a Range request)
//     snapshots/<commit>/<file>    -> ../../blobs/<etag> (relative symlinks, one level deeper per '/')
//     refs/<revision>              the commit sha a branch or tag pointed to last time
//     .no_exist/<commit>/<file>    empty marker: the file does not exist at that commit
//
// Cache root: `cacheDir` option, else $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (constants.py).
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomicSync } from '../util/fs-atomic.js';

export const REGEX_COMMIT_HASH = /^[0-9a-f]{40}$/;

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** The hub cache root, resolved like Python's `constants.HF_HUB_CACHE`. */
export function hubCacheDir(cacheDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (cacheDir) return resolve(expandHome(cacheDir));
  const direct = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (direct) return resolve(expandHome(direct));
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return resolve(expandHome(home), 'hub');
}

/** `org/name` -> `models--org--name` (repo_folder_name). */
export function repoFolderName(repoId: string, repoType: 'model' | 'dataset' | 'space' = 'model'): string {
  return [`${repoType}s`, ...repoId.split('/')].join('--');
}

/** Python's `_is_true`: 1, ON, YES, TRUE (any case). */
export function envTrue(v: string | undefined): boolean {
  return v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.toUpperCase());
}

/** Paths of one repo inside the cache. */
export class RepoCache {
  readonly storage: string;

  constructor(readonly cacheRoot: string, readonly repoId: string) {
    this.storage = join(cacheRoot, repoFolderName(repoId));
  }

  blobPath(etag: string): string {
    return join(this.storage, 'blobs', etag);
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    return join(this.storage, 'snapshots', commit);
  }

  /** snapshots/<commit>/<file>; refuses names that would escape the snapshot folder. */
  pointerPath(commit: string, file: string): string {
    const base = this.snapshotDir(commit);
    const p = resolve(base, ...file.split('/'));
    if (!p.startsWith(base + sep)) throw new Error(`invalid file name in repo: ${JSON.stringify(file)}`);
    return p;
  }

  /** The commit sha that `revision` pointed to last time (refs/<revision>), or undefined. */
  readRef(revision: string): string | undefined {
    if (REGEX_COMMIT_HASH.test(revision)) return revision;
    const p = join(this.storage, 'refs', ...revision.split('/'));
    try {
      const v = readFileSync(p, 'utf8').trim();
      return v || undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores refs/<revision> = commit atomically when it changed (no-op for a commit sha). */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const p = join(this.storage, 'refs', ...revision.split('/'));
    if (existsSync(p) && readFileSync(p, 'utf8') === commit) return;
    mkdirSync(dirname(p), { recursive: true });
    writeFileAtomicSync(p, commit);
  }

  /** Marks a file as absent at `commit` (.no_exist), as huggingface_hub does after a 404. */
  markNoExist(commit: string, file: string): void {
    const p = join(this.storage, '.no_exist', commit, ...file.split('/'));
    try {
      mkdirSync(dirname(p), { recursive: true });
      if (!existsSync(p)) writeFileSync(p, '');
    } catch {
      /* best effort, like Python */
    }
  }

  /** True when snapshots/<commit>/<file> exists and its symlink target (the blob) exists. */
  hasFile(commit: string, file: string): boolean {
    try {
      return statSync(this.pointerPath(commit, file)).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink. The link is made
   * under a temporary name and renamed into place, so readers never see a missing or half-made
   * entry. Where symlinks are not allowed the blob is copied (Python does the same on Windows).
   */
  link(commit: string, file: string, etag: string): string {
    const pointer = this.pointerPath(commit, file);
    const blob = this.blobPath(etag);
    mkdirSync(dirname(pointer), { recursive: true });
    const target = relative(dirname(pointer), blob);
    try {
      if (lstatSync(pointer).isSymbolicLink() && readlinkSync(pointer) === target) return pointer;
    } catch {
      /* absent */
    }
    const tmp = join(dirname(pointer), `.${randomBytes(6).toString('hex')}.link.tmp`);
    try {
      symlinkSync(target, tmp);
    } catch {
      copyFileSync(blob, tmp);
    }
    try {
      renameSync(tmp, pointer);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return pointer;
  }
}
