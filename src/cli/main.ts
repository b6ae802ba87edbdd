/**
 * The `anyres` command. Each sub-command lives in its own file and registers
 * itself here.
 */
import { Command } from 'commander';
import { registerFixtureCommand } from './fixture.ts';
import { registerReproduceCommand } from './reproduce.ts';
import { registerTrainCommands } from './train.ts';
import { registerExploreCommand } from './explore.ts';
import { registerExportCommand } from './export.ts';
import { registerModelsCommand } from './models.ts';
import { registerConvertCommand, registerSimilarityCommand } from './convert.ts';
import { registerPretrainCommand } from './pretrain.ts';
import { registerEvalCommand } from './eval.ts';
import { registerPredictCommand } from './predict.ts';
import { registerDetectCommands } from './detect.ts';

const program = new Command();
program
  .name('anyres')
  .description('Vision transformers at any input resolution: absolute-win position embeddings and ResFormer multi-resolution training, on ONNX Runtime')
  .version('0.1.0')
  .showHelpAfterError();

registerReproduceCommand(program);
registerTrainCommands(program);
registerFixtureCommand(program);
registerExploreCommand(program);
registerExportCommand(program);
registerModelsCommand(program);
registerConvertCommand(program);
registerSimilarityCommand(program);
registerPretrainCommand(program);
registerEvalCommand(program);
registerPredictCommand(program);
registerDetectCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as Error;
  console.error(`anyres: ${err.message}`);
  if (process.env.ANYRES_DEBUG) console.error(err.stack);
  process.exit(1);
});
