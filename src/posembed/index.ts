/**
 * Position embeddings at any resolution: PyTorch-exact resampling matrices, absolute win
 * (Bolya et al. 2024), sin-cos tables (ResFormer, MAE, big_vision), detectron2 decomposed relative
 * positions, and window-similarity diagnostics. Pure float64 TypeScript; the graph wrappers apply
 * these matrices by matmul.
 */
export {
  resampleMatrix, transposeMatrix, applySeparable, resample2d, resample2dAdjoint, resampleAbsPosEmbed, timmMode,
  RESAMPLE_MODES,
  type ResampleMatrix, type ResampleMode, type ResampleOptions, type TimmInterpolation, type TimmResampleOptions,
} from './resample.ts';
export {
  absWinEmbed, absWinEmbedGrad, recursiveAbsWin, recursiveAbsWinWindow, absWinFromLearned,
  type AbsWinOptions, type RecursiveAbsWinInner, type FromLearnedOptions,
} from './abswin.ts';
export { resformerSincos, sincos2dTokens, type ResformerSincosOptions, type SincosLayout } from './sincos.ts';
export { getRelPosIndex, getRelPos, relPosLength, relPosResizeMatrix } from './relpos.ts';
export { windowSimilarity, tiledEnergyShare, similarityOf, type SimilarityReport } from './similarity.ts';
export { gridToTokens, tokensToGrid, tileCrop, tileCropAdjoint, grid, checkLen, type Grid } from './reference.ts';
