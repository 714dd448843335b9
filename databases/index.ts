/**
 * The engines of the platform. Both targets and the config schema iterate this list; an engine
 * that is not here does not exist for the program.
 */
import type { EngineModule, EngineName } from './engine.ts';
import { clickhouse } from './clickhouse/index.ts';
import { elasticsearch } from './elasticsearch/index.ts';
import { mongodb } from './mongodb/index.ts';
import { postgresql } from './postgresql/index.ts';
import { redis } from './redis/index.ts';

export const ENGINES: Readonly<Record<EngineName, EngineModule>> = {
  postgresql,
  mongodb,
  redis,
  elasticsearch,
  clickhouse,
};
