// Public entry point of lorafit.
export { Model, setThreads, torchInfo } from './model.js';
export type { Dtype, ModelConfig, ModelLoadOptions, ForwardOptions, ForwardResult } from './model.js';
export { LorafitError } from './errors.js';
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors } from './safetensors.js';
export type { StTensor, StFile, StDtype } from './safetensors.js';
export { Tokenizer } from './tokenizer.js';
export * as data from './data/index.js';
export * as evaluate from './eval/index.js';
export { LoraAdapter } from './lora-adapter.js';
export type { LoraOptions, TrainableParameters } from './lora-adapter.js';
export { Trainer } from './trainer.js';
export type { TrainerOptions, StepEvent, EvalEvent, CheckpointEvent, FitResult } from './trainer.js';
export type { MicroBatch } from './model.js';
export { createLogger } from './logger.js';
export { chat, chatStream, chatPromptIds, chatStopIds, completionStream, loadModelAndTokenizer } from './chat.js';
export type { ChatMessage, ChatOptions, GenerationStats, LoadModelAndTokenizerOptions } from './chat.js';
