/**
 * The anyres explorer: three panels (position embeddings, in-page classification, results
 * charts). With `anyres explore --run runs/NAME`, the run's exported models, checkpoints and
 * results.json are loaded from /run/ through the server's curated manifest.
 */
import './style.css';
import { byId, h } from './dom.ts';
import { configureOrt, mountClassify } from './classify.ts';
import { mountPosembed } from './posembed-view.ts';
import { mountResults } from './results.ts';

interface RunManifest { schema: string; name: string; results: string | null; models: string[]; checkpoints: string[] }

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function main(): Promise<void> {
  configureOrt();
  const app = byId('app');
  const runInfo = byId('run-info');
  const pe = mountPosembed(byId('posembed'));
  const cls = mountClassify(byId('classify-panel'));
  const res = mountResults(byId('results'));

  // Models shipped with the page (web/public/models, listed in its manifest), then the run's.
  const sources: { base: string; manifest: string }[] = [
    { base: './models/', manifest: './models/manifest.json' },
    { base: './run/', manifest: './run/manifest.json' },
  ];
  for (const src of sources) {
    const r = await fetch(src.manifest);
    if (!r.ok) continue;
    const m = (await r.json()) as RunManifest;
    if (src.base === './run/') runInfo.replaceChildren('run ', h('code', {}, m.name), `: ${m.models.length} exported model file(s), ${m.checkpoints.length} checkpoint(s)${m.results ? ', results.json' : ''}`);
    for (const f of m.models) {
      try {
        cls.addModel(f, await fetchBytes(src.base + f));
      } catch (e) {
        runInfo.append(h('span', { class: 'error' }, ` ${f}: ${(e as Error).message}`));
      }
    }
    for (const c of m.checkpoints) await pe.loadCheckpoint(c, await fetchBytes(src.base + c));
    if (m.results) await res.show(await (await fetch(src.base + m.results)).json(), m.results, src.base);
  }
  app.dataset.ready = '1';
}

main().catch((e: unknown) => {
  const el = document.getElementById('fatal');
  if (el) el.textContent = `The explorer failed to start: ${(e as Error).message}`;
  console.error(e);
});
