/**
 * A small seeded generator (mulberry32): a rehearsal with the same seed and options replays
 * exactly, which is what makes a reported violation reproducible.
 */
export class Random {
    private state: number;

    constructor(seed: number) {
        this.state = seed >>> 0 || 0x9e3779b9;
    }

    /** Uniform in [0, 1). */
    next(): number {
        let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }

    /** True with probability `p`. */
    chance(p: number): boolean {
        return p > 0 && this.next() < p;
    }

    /** Exponentially distributed wait with the given mean (a Poisson process's gaps). */
    exponential(mean: number): number {
        return -Math.log(1 - this.next()) * mean;
    }

    /** `length` characters drawn from `alphabet`. */
    text(length: number, alphabet: string): string {
        let out = "";
        for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)];
        return out;
    }
}
