// Lint for correctness, not taste: type-aware rules that catch floating promises and `any` leaking into the bundles.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The room rule of functions/: an action's logic opens no connection and touches no file; the runner injects the
 * Kubernetes client and reads the environment (STYLE.md, "Thin entry, pure core"). Type-only imports do no I/O.
 */
const NO_IO = 'functions/ holds pure action logic, with no I/O: use the Kube that the runner injects (lib/runner.ts).';
const IO_MODULES = ['http', 'https', 'net', 'fs', 'child_process', 'dgram', 'tls'];
// net's address checks are pure functions (network-isolate validates its CIDRs with them).
const PURE_NAMES = { net: ['isIP', 'isIPv4', 'isIPv6'] };
const noIo = {
  files: ['functions/**'],
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: IO_MODULES.flatMap((module) =>
          [module, `node:${module}`].map((name) => ({
            name,
            message: NO_IO,
            allowTypeImports: true,
            ...(PURE_NAMES[module] === undefined ? {} : { allowImportNames: PURE_NAMES[module] }),
          })),
        ),
        patterns: [
          { regex: `^(node:)?(${IO_MODULES.join('|')})/`, message: NO_IO, allowTypeImports: true },
          { regex: '(^|/)lib/kube/(client|connection)(\\.ts)?$', message: NO_IO, allowTypeImports: true },
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'manifests/**', 'node_modules/**', 'test/e2e/cluster/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  noIo,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests and tooling may use chai-less assertions on loosely typed JSON; the shipped code may not.
    files: ['test/**', 'build/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // lib/kube is the Kubernetes client and nothing more: it knows pods, paths and answers, never an alert, an action
    // or a parameter codec, so that what reaches a URL is decided outside it (checked names, lib/names.ts).
    files: ['lib/kube/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)(target|params|alert|guards|action|runner|outcome|audit|entry|checks|resolve)(\\.ts)?$|(^|/)(router|targets)(/|$)',
              message: 'lib/kube must not import the alert domain: take checked names and refs (lib/names.ts, lib/kube/refs.ts) instead.',
            },
          ],
        },
      ],
    },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
);
