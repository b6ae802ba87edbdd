/**
 * Layer order of src/ (issue 14): each layer may import itself and the layers listed before it,
 * never one listed after it. `npm run layers` checks this and `.ci/run` fails on a back-import.
 *
 *   util      shared low-level helpers (random numbers, atomic writes, progress reporting)
 *   graph     tensors, ops, autodiff, ONNX tracing and runtime
 *   posembed  position embeddings (absolute win, resampling, sin-cos, similarity); no models
 *   nn        layers built from graph ops
 *   models    model families and their registry
 *   data      datasets, images, transforms, loaders
 *   io        file formats: checkpoints, safetensors, pth, pickle, ONNX export, model metadata
 *   train     optimisers, schedules, training loops
 *   det       detection heads, losses, training and evaluation (may use train, never eval)
 *   eval      experiments, charts, reports, the main job
 *   fixture   golden-fixture checks against the official PyTorch code
 *   cli       command-line commands (flags and printing)
 *
 * src/index.ts is the public entry and may import every layer. web/ (the browser explorer)
 * may import src/; src/ never imports web/. No import cycles anywhere in src/ or web/.
 */
const layers = ['util', 'graph', 'posembed', 'nn', 'models', 'data', 'io', 'train', 'det', 'eval', 'fixture', 'cli'];

const layerRules = layers.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} may import only ${layers.slice(0, i + 1).join(', ')} (layers listed before it)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${layers.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'layer-lib-not-index',
      comment: 'src/index.ts is the public entry; nothing inside the library imports it',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'src-not-web',
      comment: 'the library never depends on the browser app; web/ imports src/, not the reverse',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^web/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles (e.g. between the files of src/graph/ops)',
      severity: 'error',
      from: { path: '^(src|web)/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every relative import resolves to a file',
      severity: 'error',
      from: { path: '^(src|web)/' },
      to: { couldNotResolve: true, dependencyTypes: ['local'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};
