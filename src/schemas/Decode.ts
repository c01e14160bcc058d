/**
 * Decoding of what comes from outside the process: a refusal, never a throw. Effect's Union decoder
 * picks a member by `String(input[tag])`, which throws a TypeError for an object whose own
 * `toString` is no function: `{ "kind": { "toString": 0 } }` in a batch sent to the server made it
 * answer 500, and `{ "_tag": { "toString": {} } }` on the service's socket would have thrown in its
 * reader. Such input is refused with a ParseError, like any other a schema refuses. Only a union
 * of members with a literal field picks a member that way: schemas without one (RunMetadata,
 * HistoryBlock) are decoded with Effect's decoder as they are.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** Whether `String(value)` throws. */
const untextable = (value: unknown): boolean => {
  try {
    String(value)
    return false
  } catch {
    return true
  }
}

/** Why a decoder threw on `input`: the fields it could not turn into text, when that was it. */
const whyUnreadable = (input: unknown, error: unknown): string => {
  const fields = typeof input === "object" && input !== null
    ? Object.entries(input).flatMap(([key, value]) => (untextable(value) ? [JSON.stringify(key)] : []))
    : []
  return fields.length > 0
    ? `cannot be read: ${fields.join(", ")} holds an object that cannot be turned into text`
    : `cannot be read: ${error instanceof Error ? error.message : String(error)}`
}

/** `Schema.decodeUnknownEither(schema)` that answers a ParseError where the decoder would throw. */
export const decodeUnknownEither = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (input: unknown): Either.Either<A, ParseResult.ParseError> => {
    try {
      return decode(input)
    } catch (error) {
      return Either.left(new ParseResult.ParseError({ issue: new ParseResult.Type(schema.ast, input, whyUnreadable(input, error)) }))
    }
  }
}
