// Paging over the API's `next_token`, and answers that arrive after their question was
// replaced (another filter, another page), dropped.
import { useState } from "preact/hooks";

/**
 * Runs `question`'s answer into `take` (or its failure into `fail`) unless the returned
 * cancel ran first: the cleanup of the effect that asked.
 */
export function latestOnly<T>(question: Promise<T>, take: (answer: T) => void, fail: (error: unknown) => void): () => void {
  let current = true;
  question.then(
    (answer) => current && take(answer),
    (error) => current && fail(error),
  );
  return () => {
    current = false;
  };
}

export interface Pages {
  /** The token of the page shown (null: the first). */
  token: string | null;
  number: number;
  /** The API's token for the page after this one, once known. */
  setNext: (token: string | null) => void;
  reset: () => void;
}

export function usePages(): Pages & { forward: () => void; back: () => void; hasNext: boolean } {
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  return {
    token: tokens[tokens.length - 1],
    number: tokens.length,
    setNext,
    reset: () => setTokens([null]),
    hasNext: next !== null,
    forward: () => next && setTokens([...tokens, next]),
    back: () => tokens.length > 1 && setTokens(tokens.slice(0, -1)),
  };
}

export function Paging({ label, pages }: { label: string; pages: ReturnType<typeof usePages> }) {
  return (
    <nav class="paging" aria-label={label}>
      <button type="button" disabled={pages.number === 1} onClick={pages.back}>
        Previous
      </button>
      <button type="button" disabled={!pages.hasNext} onClick={pages.forward}>
        Next
      </button>
    </nav>
  );
}
