// Writes a .gz and a .br beside every text file of the build, where it is smaller, so that the
// gateway serves precompressed bytes chosen by Accept-Encoding and compresses nothing at run time.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = process.env.WEB_OUT_DIR || 'dist';
const TEXT = /\.(html|js|mjs|css|svg|json|txt|map)$/;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

for (const path of [...files(root)]) {
  if (!TEXT.test(path)) continue;
  const raw = readFileSync(path);
  const gz = gzipSync(raw, { level: 9 });
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
    },
  });
  if (gz.length < raw.length * 0.9) writeFileSync(`${path}.gz`, gz);
  if (br.length < raw.length * 0.9) writeFileSync(`${path}.br`, br);
}
