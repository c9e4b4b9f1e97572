// Lint rules: type-aware checks everywhere, and Temporal's determinism guard for workflow code
// (workflows run in a sandbox that may import only a few Node built-ins and no non-workflow SDK package).
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const ALLOWED_NODE_BUILTINS = new Set(['assert', 'url', 'util']);
const forbiddenInWorkflows = [
  ...builtinModules.filter((m) => !ALLOWED_NODE_BUILTINS.has(m)).flatMap((m) => [m, `node:${m}`]),
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
  '@aws-sdk/client-s3',
  'pino',
  'express',
];

// Arrows run one way: cli (over HTTP only) → stack (the launcher) → api / worker → requests → workflows → activities → datapath → sites → common.
// A folder may import only the folders below it (workflows only the types of activities and the data path).
const folder = (name) => [`../${name}/*`, `../../${name}/*`, `../${name}`, `../../${name}`];
const layer = (forbidden, message) => ({ group: forbidden.flatMap(folder), message });
const typesOnly = (folders, message) => ({ group: folders.flatMap(folder), allowTypeImports: true, message });
const LAYERS = {
  common: [layer(['cli', 'stack', 'api', 'worker', 'requests', 'workflows', 'activities', 'datapath', 'sites', 'runbooks'], 'common/ is the bottom layer: it imports no other folder of the project')],
  runbooks: [layer(['cli', 'stack', 'api', 'worker', 'requests', 'workflows', 'activities', 'datapath', 'sites'], 'the runbook language depends only on common/')],
  sites: [layer(['cli', 'stack', 'api', 'worker', 'requests', 'workflows', 'activities', 'datapath', 'runbooks'], 'sites/ (the provider and the simulated site) depends only on common/')],
  datapath: [layer(['cli', 'stack', 'api', 'worker', 'requests', 'workflows', 'activities', 'runbooks'], 'the data path library depends only on sites/ and common/')],
  activities: [layer(['cli', 'stack', 'api', 'worker', 'requests', 'workflows'], 'activities use the data path, sites and common/, never workflows, the API or the launcher')],
  workflows: [
    layer(['cli', 'stack', 'api', 'worker', 'requests'], 'workflow code imports no process-level code'),
    typesOnly(['activities', 'datapath', 'sites'], 'workflows may import only the types of activities, the data path and sites (import type)'),
  ],
  api: [
    layer(['cli', 'stack', 'worker'], 'the API does not import the launcher or the workers'),
    layer(['activities'], 'the API talks to Temporal and reads the data path; it never calls activity code'),
  ],
  worker: [layer(['cli', 'stack', 'api'], 'workers do not import the launcher or the API')],
  requests: [layer(['cli', 'stack', 'api', 'worker'], 'requests to the operations desk are shared by the API and the orchestration worker: they import neither')],
  cli: [layer(['api', 'worker', 'requests', 'workflows', 'activities', 'datapath', 'sites', 'runbooks'], 'the command line speaks to the API over HTTP only; it reads settings and the local token')],
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', '.logs/**', '.scratch/**', 'dist/**', 'bin/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'off',
    },
  },
  ...Object.entries(LAYERS)
    .filter(([name]) => name !== 'workflows')
    .map(([name, patterns]) => ({ files: [`${name}/**/*.ts`], rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] } })),
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', ...forbiddenInWorkflows],
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: LAYERS.workflows }],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' }, { name: 'setInterval', message: 'use sleep() in a loop' }],
    },
  },
  { files: ['eslint.config.mjs'], ...tseslint.configs.disableTypeChecked },
);
