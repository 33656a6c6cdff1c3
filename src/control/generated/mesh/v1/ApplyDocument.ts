// Original file: proto/mesh/v1/admin.proto


/**
 * One document of the file given to `meshctl apply -f`. meshctl parses YAML (or JSON)
 * locally and sends each document as JSON, so the server needs no YAML parser and
 * validates exactly what was sent.
 */
export interface ApplyDocument {
  /**
   * 1-based position of the document in its file, so the server's messages say
   * "document 3" for the third document even when empty documents were skipped.
   */
  'number'?: (number);
  /**
   * The document as the user wrote it (not normalised), one JSON value.
   */
  'json'?: (string);
}

/**
 * One document of the file given to `meshctl apply -f`. meshctl parses YAML (or JSON)
 * locally and sends each document as JSON, so the server needs no YAML parser and
 * validates exactly what was sent.
 */
export interface ApplyDocument__Output {
  /**
   * 1-based position of the document in its file, so the server's messages say
   * "document 3" for the third document even when empty documents were skipped.
   */
  'number': (number);
  /**
   * The document as the user wrote it (not normalised), one JSON value.
   */
  'json': (string);
}
