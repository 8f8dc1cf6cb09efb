// node-postgres's value serialization (arrays to array literals, Dates, Buffers, JSON),
// shared by the embedded driver so both drivers send parameters alike. @types/pg does
// not declare this module.
declare module 'pg/lib/utils.js' {
  export function prepareValue(value: unknown): unknown;
}
