// autocannon ships no types; the harness uses its callback form only and types the result it reads.
declare module 'autocannon' {
  function autocannon(options: Record<string, unknown>, done: (error: Error | null, result: any) => void): unknown;
  export default autocannon;
}
