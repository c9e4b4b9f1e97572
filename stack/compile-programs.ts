/**
 * The product's programs compiled to one JavaScript file each, for launchers that start many of
 * them (`npm start`, `npm test`): tsx transforming and resolving every module of a worker at each
 * start cost it 1.5-1.6 CPU s, the compiled file 0.7-0.9 (worker/main.ts to its argument check,
 * three runs each). Packages stay outside the file and load from the project's node_modules.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { PROJECT_ROOT } from '../common/config';
import { PROGRAMS } from '../common/programs';

/**
 * Each source file keeps its own folder as __dirname, so that paths resolved from it (the project
 * root, sites.json) are the same as when it runs from source.
 */
const sourceFolders: Plugin = {
  name: 'source-folders',
  setup(compiler) {
    compiler.onLoad({ filter: /\.ts$/ }, async ({ path: file }) => ({
      contents: (await readFile(file, 'utf8')).replace(/\b__dirname\b/g, JSON.stringify(path.dirname(file))),
      loader: 'ts',
    }));
  },
};

/**
 * Writes `<program>.js` for every program into `folder`, which may be anywhere. No source maps:
 * node's --enable-source-maps cost 0.2 of the 0.8 CPU s saved per start; a stack trace names the
 * compiled file's line, and the file marks where each source file's code begins.
 */
export async function compilePrograms(folder: string): Promise<void> {
  await build({
    entryPoints: Object.fromEntries(Object.entries(PROGRAMS).map(([program, source]) => [program, path.join(PROJECT_ROOT, source)])),
    outdir: folder,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    // Packages resolve from the project, wherever the compiled file is.
    banner: { js: `module.paths.unshift(${JSON.stringify(path.join(PROJECT_ROOT, 'node_modules'))});` },
    plugins: [sourceFolders],
    logLevel: 'warning',
  });
}
