/**
 * Graph quality against the peer: timm `vit_tiny_patch16_224` exported by PyTorch 1.13's
 * `torch.onnx.export` (the graph a user would run instead of ours; see the peers README) and our
 * ViT-Ti/16 forward, both with weights as initializers, batch 8 at 224, in the same process with
 * the same ONNX Runtime session options (Runtime.session: --threads intra-op threads, sequential,
 * optimisation level 'all'), timed interleaved. Our graph is measured with fused and with explicit
 * attention. The ratio is our img/s over the peer's (goal >= 1.3).
 *
 * Usage: npm run bench -- peer [--peer ../shared/peers/timm_vit_tiny_patch16_224_b8.onnx] [--threads 2] [--rounds 15]
 * Prints one `RESULT {json}` line.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import * as F from '../src/graph/index.ts';
import { createVit } from '../src/models/vit.ts';
import { Params, initWeights } from '../src/nn/params.ts';
import { Rng } from '../src/util/rng.ts';
import { type Variant, interleaved } from './interleave.ts';

interface Opts {
  peer: string;
  threads: number;
  rounds: number;
}

function parseArgs(args: readonly string[]): Opts {
  const o: Opts = { peer: '../shared/peers/timm_vit_tiny_patch16_224_b8.onnx', threads: 2, rounds: 15 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[++i];
    if (v === undefined) throw new Error(`bench peer: ${a} needs a value`);
    if (a === '--peer') o.peer = v;
    else if (a === '--threads') o.threads = Number(v);
    else if (a === '--rounds') o.rounds = Number(v);
    else throw new Error(`bench peer: unknown argument '${a}' (known: --peer, --threads, --rounds)`);
  }
  if (!fs.existsSync(o.peer)) throw new Error(`bench peer: no peer graph at '${o.peer}' (pass --peer <file.onnx>)`);
  return o;
}

/** Our ViT-Ti/16 inference graph at [B, 3, 224, 224] with its weights as initializers. */
function ourGraph(form: F.AttentionForm, B: number): Uint8Array {
  const model = createVit('vit-tiny', { numClasses: 1000 });
  const weights = initWeights(model.paramInfos(), new Rng(0));
  const g = new F.Graph();
  g.attention = form;
  const x = g.input('x', [B, 3, 224, 224]);
  const logits = model.forward(new Params(g, weights), x, { train: false }).logits;
  return F.lower({ logits }, { inputs: [x], name: `vit-tiny-${form}` }).bytes;
}

export async function run(args: readonly string[]): Promise<void> {
  const o = parseArgs(args);
  const rt = new F.Runtime({ threads: o.threads });
  const peer = await rt.session(new Uint8Array(fs.readFileSync(o.peer)));
  const inName = peer.inputNames[0]!;
  const meta = peer.inputMetadata[0] as { shape?: (number | string)[] } | undefined;
  const B = typeof meta?.shape?.[0] === 'number' ? meta.shape[0] : 8;
  const r = new Rng(1);
  const x = Float32Array.from({ length: B * 3 * 224 * 224 }, () => r.normal());
  const feed = (name: string): Record<string, ort.Tensor> => ({ [name]: new ort.Tensor('float32', x, [B, 3, 224, 224]) });
  const variants: Variant[] = [{ name: 'peer', run: async () => void (await peer.run(feed(inName))) }];
  for (const form of ['fused', 'explicit'] as const) {
    const s = await rt.session(ourGraph(form, B));
    variants.push({ name: form, run: async () => void (await s.run(feed('x'))) });
  }
  const t = await interleaved(variants, o.rounds, console.log);
  const p = t.get('peer')!.median;
  const f = t.get('fused')!.median;
  const e = t.get('explicit')!.median;
  const rec = {
    model: 'vit-tiny', res: 224, batch: B, threads: o.threads, rounds: o.rounds,
    peer_img_s: +(B / p).toFixed(2), ours_fused_img_s: +(B / f).toFixed(2), ours_explicit_img_s: +(B / e).toFixed(2),
    ratio_fused: +(p / f).toFixed(3), ratio_explicit: +(p / e).toFixed(3),
  };
  console.log(`vit-tiny @224 batch ${B}: peer ${rec.peer_img_s} img/s, ours fused ${rec.ours_fused_img_s} (x${rec.ratio_fused}), explicit ${rec.ours_explicit_img_s} (x${rec.ratio_explicit})`);
  console.log(`RESULT ${JSON.stringify(rec)}`);
}
