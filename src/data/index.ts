/** The data layer: datasets that render or load images at any resolution, transforms and seeded loaders. */
export * from './image.ts';
export * from './dataset.ts';
export * from './resample.ts';
export * from './raster.ts';
export * from './synthetic.ts';
export * from './clips.ts';
export * from './scenes.ts';
export * from './idx.ts';
export * from './fashion-mnist.ts';
export * from './folder.ts';
export * from './spec.ts';
export * from './transforms.ts';
export { Loader, TransformedDataset, type LoaderOptions, type MultiResBatch } from './loader.ts';
