/** Types of mulberry32.js (plain JavaScript so that browsers load it as it is). */
export function mulberry32(seed: number): () => number;
