/**
 * The tests' one way to wait for a condition: poll it against a deadline, so that a condition that
 * never holds fails the test with what it waited for, instead of hanging it or sleeping a guess.
 */

/** Polls `check` every 50 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export const poll = async <A>(what: string, check: () => A | undefined | Promise<A | undefined>, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
