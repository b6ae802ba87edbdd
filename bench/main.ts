/**
 * Benchmark dispatcher: `npm run bench -- <name> [args...]`.
 *
 * Each benchmark lives in its own file bench/<name>.ts exporting `run(args)`; this table only
 * maps names to those files (lazy imports, so one benchmark's dependencies never load for another).
 * To add one: write bench/<name>.ts and add one line here.
 */
export interface BenchModule {
  run(args: readonly string[]): Promise<void>;
}

const benches: Record<string, { describe: string; load: () => Promise<BenchModule> }> = {
  attention: { describe: 'fused vs explicit attention: ViT-Ti/16 forward and train step, ViTDet-B abs-win and relpos-all forward', load: () => import('./attention.ts') },
  engine: { describe: 'matmul rate vs a transformer MLP block forward and forward+backward+AdamW', load: () => import('./engine.ts') },
  models: { describe: 'ViT-Ti/16 and Hiera-T at 224 (forward/train img/s, GFLOP/img, matmul fraction) and ViTDet-B relpos-everywhere vs abs-win', load: () => import('./models.ts') },
  'detection-probe': { describe: 'the reproduce detection section with overrides, on other seeds: how its recipe was chosen (AP per variant, spread, paired differences)', load: () => import('./detection-probe.ts') },
  'pretrain-probe': { describe: 'the detection section\'s ViT classification pretraining with overrides, on other seeds: top-1 per recipe', load: () => import('./pretrain-probe.ts') },
  detect: { describe: 'FCOS detectors on ViTDet-mini and HieraDet-mini: train step and inference img/s, host target assignment ms, fraction of the matmul rate', load: () => import('./detect.ts') },
  'coco-eval': { describe: 'COCOeval (bbox and segm) on 300 images x 100 detections: ms per evaluation', load: () => import('./coco-eval.ts') },
  peer: { describe: 'our ViT-Ti/16 forward vs the torch.onnx.export peer graph in the same process (img/s ratio)', load: () => import('./peer.ts') },
  profile: { describe: 'per-op kernel time of a training step (ONNX Runtime profiler) and the share of matmul/conv', load: () => import('./profile.ts') },
  train: { describe: 'training img/s of ViT-Ti/16 at 224 (batch 32) and a 224/160/128 multi-resolution step, vs the matmul rate', load: () => import('./train.ts') },
};

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  const entry = name === undefined ? undefined : benches[name];
  if (!entry) {
    const list = Object.entries(benches).map(([k, v]) => `  ${k.padEnd(10)} ${v.describe}`).join('\n');
    throw new Error(`bench: ${name === undefined ? 'no benchmark named' : `unknown benchmark '${name}'`}; available:\n${list}`);
  }
  await (await entry.load()).run(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
