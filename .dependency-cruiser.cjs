/**
 * The layer rule of docs/DESIGN.md §1, checked in `npm test` (`npm run check:layers`):
 * every import points down the layers, never up, and nothing imports in a circle.
 *
 *   core ← format ← io ← run ← sinks, transforms ← log ← read ← net ← serve ← web, cli ← index
 *
 * A layer may import from its own folder and from any layer below it. Type-only imports count:
 * a type pulled from above is the same coupling as a value (tsPreCompilationDeps).
 */
const LAYERS = [
  ['core', '^lib/core/'],
  ['format', '^lib/format/'],
  ['io', '^lib/io/'],
  ['run', '^lib/run/'],
  ['sinks and transforms', '^(sinks|transforms)/'],
  ['log', '^lib/log/'],
  ['read', '^lib/read/'],
  ['net', '^lib/net/'],
  ['serve', '^lib/serve/'],
  ['cli and the page', '^(lib/cli|web)/'],
  ['index', '^lib/index\\.ts$'],
];

const above = (i) => LAYERS.slice(i + 1).map(([, re]) => `(${re})`).join('|');

module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map(([name, re], i) => ({
      name: `layer-${name.replace(/\W+/g, '-')}`,
      comment: `${name} may import only from its own layer and the ones below it (docs/DESIGN.md §1)`,
      severity: 'error',
      from: { path: re },
      to: { path: above(i) },
    })),
    {
      name: 'sinks-not-transforms',
      comment: 'sinks and transforms share a layer but do not know each other (docs/DESIGN.md §1)',
      severity: 'error',
      from: { path: '^sinks/' },
      to: { path: '^transforms/' },
    },
    {
      name: 'transforms-not-sinks',
      comment: 'sinks and transforms share a layer but do not know each other (docs/DESIGN.md §1)',
      severity: 'error',
      from: { path: '^transforms/' },
      to: { path: '^sinks/' },
    },
    {
      name: 'no-circular',
      comment: 'a cycle makes two modules one concept in two files',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-dev-deps-in-the-package',
      comment: 'what ships (lib, sinks, transforms, web) may not need a devDependency at run time',
      severity: 'error',
      from: { path: '^(lib|sinks|transforms|web)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
