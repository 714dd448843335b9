/**
 * The engines of the platform, in the order the bootstrap applies them. The stack config schema,
 * both targets, the stack's outputs, the bootstrap and its CLI all iterate this list: an engine
 * that is not here does not exist for the program, and a sixth engine is one new folder and one
 * entry here.
 */
import type { EngineModule, EngineName } from './engine.ts';
import { clickhouse } from './clickhouse/index.ts';
import { elasticsearch } from './elasticsearch/index.ts';
import { mongodb } from './mongodb/index.ts';
import { postgresql } from './postgresql/index.ts';
import { redis } from './redis/index.ts';

export const ENGINE_MODULES: readonly EngineModule[] = [postgresql, mongodb, redis, elasticsearch, clickhouse];

export const ENGINE_NAMES: readonly EngineName[] = ENGINE_MODULES.map((module) => module.name);
