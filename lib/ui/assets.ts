// The page's files: a fixed table from URL to file, so no request path is ever joined onto a
// folder. The HTML and CSS ship in lib/ui/page/, the script is lib/ui/page/app.ts compiled by tsc
// (lib/ui/page/tsconfig.json) into dist/lib/ui/page/, and uPlot comes from its npm package: all
// local, nothing from a CDN, so the page works offline.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';
import { packageRoot } from '../model/native.js';

export interface Asset {
  file: string;
  type: string;
}

export function assetTable(): Map<string, Asset> {
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  const uplot = (f: string) => require.resolve(`uplot/dist/${f}`);
  return new Map<string, Asset>([
    ['/', { file: join(root, 'lib', 'ui', 'page', 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/assets/style.css', { file: join(root, 'lib', 'ui', 'page', 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/assets/app.js', { file: join(root, 'dist', 'lib', 'ui', 'page', 'app.js'), type: 'text/javascript; charset=utf-8' }],
    ['/assets/uplot.min.js', { file: uplot('uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
    ['/assets/uplot.min.css', { file: uplot('uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

/** Reads every asset once (a missing one is an install problem, reported at start, not per request). */
export function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [url, a] of assetTable()) {
    if (!existsSync(a.file)) throw new LorafitError('E_UI_ASSETS', `the dashboard's file ${a.file} is missing (run \`npm run build:ts\`, which compiles lib/ui/page)`);
    out.set(url, { body: readFileSync(a.file), type: a.type });
  }
  return out;
}

/**
 * Whether a raw request path is refused before routing: dot segments (`..`, `.`, encoded as
 * %2e), encoded slashes or backslashes, NUL, or an empty segment (`//etc/passwd`).
 */
export function unsafePath(rawPath: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return true;
  }
  if (/%2f|%5c/i.test(rawPath) || decoded.includes('\\') || decoded.includes('\0')) return true;
  return decoded
    .split('/')
    .slice(1)
    .some((seg, i, all) => seg === '..' || seg === '.' || (seg === '' && i < all.length - 1));
}
