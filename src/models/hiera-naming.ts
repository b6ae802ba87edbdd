/**
 * The two namings of Hiera's parameters: facebookresearch/hiera (`head.projection`, `norm`,
 * `pos_embed_window`) and timm/models/hiera.py (`head.fc`, `head.norm`, `pos_embed_win`). Same
 * tensors, other names; the registry's `alternateNames` and the write-back layouts use these.
 */

/** official Hiera name -> timm Hiera name (timm/models/hiera.py: head.norm, head.fc, pos_embed_win). */
export function hieraToTimm(k: string): string {
  if (k.startsWith('norm.')) return `head.${k}`;
  if (k.startsWith('head.projection.')) return k.replace('head.projection.', 'head.fc.');
  if (k === 'pos_embed_window') return 'pos_embed_win';
  return k;
}
export function hieraToOfficial(k: string): string {
  if (k.startsWith('head.norm.')) return k.slice('head.'.length);
  if (k.startsWith('head.fc.')) return k.replace('head.fc.', 'head.projection.');
  if (k === 'pos_embed_win') return 'pos_embed_window';
  return k;
}
