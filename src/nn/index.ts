export * from './params.ts';
export * from './layers.ts';
export * from './group-norm.ts';
