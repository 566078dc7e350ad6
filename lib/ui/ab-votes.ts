// Blind A/B votes from the playground, kept in the run folder as ab-votes.jsonl: one JSON line per
// vote, appended in a single write (a reader holds back a last line without its newline). Each
// line carries what the blind showed (`a`: which system was on side A, as lib/eval/ab-test.ts's
// key does) and the person's `rating` (A, B or tie), so the tally is lib/eval's scoreAbTest over
// the file: the tuned model's wins, ties, losses, win rate (the writing-style use case's "more
// like the author" rate) and the sign test.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scoreAbTest, type AbKey, type AbRating, type RatedRow } from '../eval/ab-test.js';

export const AB_VOTES_FILE = 'ab-votes.jsonl';

export interface AbVote {
  time: string;
  trial: string;
  /** The run's adapter that played "tuned" (adapter, checkpoint-N). */
  adapter: string;
  prompt: string;
  /** Which system the person saw as answer A. */
  a: 'base' | 'tuned';
  rating: AbRating;
  answers: { A: string; B: string };
}

export interface AbTally {
  votes: number;
  /** Votes for the tuned answer, for the base answer, and ties. */
  tuned: number;
  base: number;
  ties: number;
  /** tuned / votes: how often the tuned answer was picked. */
  tunedRate: number;
  /** (tuned + ties / 2) / votes; 0.5 is no preference. */
  score: number;
  /** Two-sided sign test p-value, tuned vs base (ties dropped). */
  signTestP: number;
  /** A line of the file that is not a vote (the first one; it is left out of the tally). */
  problem?: string;
}

export function appendVote(runDir: string, vote: AbVote): void {
  appendFileSync(join(runDir, AB_VOTES_FILE), `${JSON.stringify(vote)}\n`);
}

export function readVotes(runDir: string): { votes: AbVote[]; problem?: string } {
  const file = join(runDir, AB_VOTES_FILE);
  if (!existsSync(file)) return { votes: [] };
  const text = readFileSync(file, 'utf8');
  const votes: AbVote[] = [];
  let problem: string | undefined;
  const lines = text.split('\n');
  lines.pop(); // the text after the last newline: empty, or a vote still being written
  for (const [i, raw] of lines.entries()) {
    if (!raw.trim()) continue;
    try {
      const v = JSON.parse(raw) as AbVote;
      if ((v.a !== 'base' && v.a !== 'tuned') || (v.rating !== 'A' && v.rating !== 'B' && v.rating !== 'tie')) throw new Error("needs 'a' (base|tuned) and 'rating' (A|B|tie)");
      votes.push(v);
    } catch (e) {
      problem ??= `${AB_VOTES_FILE} line ${i + 1}: ${(e as Error).message}`;
    }
  }
  return { votes, problem };
}

/** The tally of a run's votes (optionally of one adapter's). */
export function tallyVotes(runDir: string, adapter?: string): AbTally {
  const { votes: all, problem } = readVotes(runDir);
  const votes = adapter ? all.filter((v) => v.adapter === adapter) : all;
  const key: AbKey = { version: 1, seed: 'playground', items: votes.map((v, i) => ({ id: i + 1, index: i, a: v.a })) };
  const rows: RatedRow[] = votes.map((v, i) => ({ id: i + 1, rating: v.rating, comment: '', line: i + 1 }));
  const r = scoreAbTest(rows, key);
  return { votes: r.rated, tuned: r.wins, base: r.losses, ties: r.ties, tunedRate: r.winRate, score: r.score, signTestP: r.signTestP, ...(problem ? { problem } : {}) };
}
