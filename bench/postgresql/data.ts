/**
 * The PostgreSQL benchmark's synthetic world: the vocabulary articles are written with, the
 * seeded sampling helpers, the users, categories and tags built in memory (buildWorld), each
 * article's metadata (nextArticleMeta) and its text (Writer). Everything derives from SEED: the
 * same scale gives the same world.
 */
import { random, SEED, type ScaleSize } from '../scale.ts';

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

export const GENERAL_WORDS = words(`
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
export const TOPICS: ReadonlyArray<{ label: string; words: readonly string[] }> = [
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

export const FIRST_NAMES = words(`Ada Ben Clara David Elena Farid Grace Hugo Ines Jonas Keiko Liam Maya Noah
  Olga Pablo Quinn Rosa Sam Tara Umar Vera Wen Ximena Yusuf Zoe Amir Bianca Chen Dara Emil Fatima
  Goran Hana Ivan Julia Kofi Lena Marco Nadia`);
export const LAST_NAMES = words(`Smith Garcia Novak Okafor Tanaka Rossi Silva Kowalski Nguyen Larsen Dubois
  Haddad Moreau Petrov Jensen Romero Fischer Costa Ibrahim Lindqvist Walsh Kaur Morales Becker Sato
  Hughes Mendes Popescu Varga Brennan`);
const NAME_SYLLABLES = words('ka lo ri ven tor mi sa del quin bar zu nel fi ra gon li mar dus or esh al tri vo ben cor ith ul pen ros vik');

//--------------------------------------------------------------------------------------------
// Sampling
//--------------------------------------------------------------------------------------------

export type Random = () => number;

/** The item of a non-empty list at a random position. */
export function pick<T>(rand: Random, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!;
}

/** A random integer in [min, max]. */
export function between(rand: Random, min: number, max: number): number {
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
export function slugify(text: string): string {
  const base = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return base.slice(0, 80).replace(/-+$/, '');
}

export const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);

//--------------------------------------------------------------------------------------------
// The generated world
//--------------------------------------------------------------------------------------------

export const DAY_MS = 86_400_000;
/** The data set's "now": every date lies before it, whatever day the benchmark runs. */
export const END_MS = Date.UTC(2026, 0, 1);
/** Published articles span three years before END_MS. */
const PUBLISHED_SPAN_MS = 3 * 365 * DAY_MS;
/** Daily statistics cover the last STATS_DAYS days; the author's report reads the last 30. */
export const STATS_DAYS = 60;
export const REPORT_DAYS = 30;
/** Share of published articles that have daily statistics (the analytics job's sample). */
const STATS_SHARE = 0.2;

export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

type ArticleStatus = 'published' | 'draft' | 'review' | 'archived';

interface Category {
  id: string;
  parent: number | null;
  topic: number;
  slug: string;
  name: string;
}

export interface World {
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
export function buildWorld(size: ScaleSize): World {
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
export function nextArticleMeta(rand: Random, world: World): ArticleMeta {
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
export const pickGeneralWord = zipfWords(GENERAL_WORDS, 0.7);

/** English-looking prose about an article's topics: what to_tsvector and ts_headline work on. */
export class Writer {
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
