/**
 * The one preset lookup every family factory uses (`createVit('vit-tiny')`, `createHiera(cfg)`...):
 * a name is looked up in the family's table of presets (sizes are data), a config is taken as it is.
 */

/** `cfgOrName` as a config: a preset of `presets` by name, or the config itself. Throws naming the known presets. */
export function presetOrConfig<C>(cfgOrName: C | string, presets: Readonly<Record<string, C>>, factory: string): C {
  if (typeof cfgOrName !== 'string') return cfgOrName;
  const found = Object.prototype.hasOwnProperty.call(presets, cfgOrName) ? presets[cfgOrName] : undefined;
  if (!found) throw new Error(`${factory}: unknown preset '${cfgOrName}' (known: ${Object.keys(presets).join(', ')})`);
  return found;
}
