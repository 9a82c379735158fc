"""Which calls the analyser could not type look like I/O, for run-time confirmation.

A call whose target cannot be resolved (a method of an untyped parameter, of
an attribute nobody set visibly, of an unknown call's result) may be I/O. Most
are not (``s.strip()``, ``items.append(x)``, ``log.info(...)``), and watching
every function that makes one would tax plain code. A call is *suspicious*
when its method is not a builtin type's or a logger's, and either the method
is an I/O verb (``send``, ``execute``, ``commit``, ``upload_file`` ...) or the
receiver is named like a client (``client``, ``session``, ``conn``, ``s3``,
``llm`` ... anywhere in its attribute chain, in snake_case or camelCase).

Invariants:
- Pure and syntactic: looks at names only; never resolves, never guesses a type.
- Errs towards suspicion only where the run-time check settles it: a
  suspicious call makes its function *watched*, and a watched function that
  does no I/O records nothing.
"""

from __future__ import annotations

import ast
import re


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Methods of builtin types, loggers, regular expressions and common value
# objects: calling them on anything is not I/O.
PURE_METHODS = _names(
    """
    append extend insert pop remove clear copy count index reverse sort keys values items get
    setdefault update popitem add discard union intersection difference issubset issuperset
    symmetric_difference strip lstrip rstrip split rsplit splitlines join lower upper title
    capitalize casefold replace startswith endswith find rfind format format_map encode decode
    isdigit isalpha isalnum isspace isupper islower isnumeric isdecimal isidentifier zfill ljust
    rjust center partition rpartition expandtabs translate maketrans hex fromhex to_bytes
    from_bytes bit_length is_integer as_integer_ratio conjugate isoformat strftime timestamp
    date time astimezone total_seconds weekday isoweekday debug info warning warn error
    exception critical log model_dump model_dump_json model_validate model_copy dict json
    group groups groupdict match fullmatch search sub subn findall finditer most_common
    elements appendleft popleft extendleft rotate tolist astype sum mean min max apply head
    tail to_dict to_list iterrows itertuples groupby fillna dropna reset_index set_index
    sort_values rename_axis describe agg aggregate pivot melt explode unique nunique
    value_counts isna notna any all round abs clip cumsum shift diff rolling resample
    setattr getattr hasattr copy_with bind partial wraps cache_clear cache_info close aclose
    __enter__ __exit__ __aenter__ __aexit__ __init__ __call__ __str__ __repr__
    """
)

# Method names that mean I/O on whatever they are called on.
_IO_VERBS = _names(
    """
    send sendall sendto sendmail send_message sendfile recv recv_into recvfrom request urlopen
    fetch fetchone fetchall fetchmany fetchval fetchrow execute executemany executescript
    commit rollback publish produce basic_publish basic_get basic_consume upload upload_file
    upload_fileobj upload_blob upload_from_filename upload_from_string download
    download_file download_fileobj download_as_bytes download_as_text download_to_filename
    put_object get_object delete_object list_objects list_objects_v2 copy_object head_object
    put_item get_item delete_item batch_write_item invoke ainvoke batch abatch astream
    create_completion generate_content chat_postMessage files_upload post put patch
    connect login quit listdir mkdir makedirs unlink rmdir write_text write_bytes read_text
    read_bytes save refresh_from_db bulk_create bulk_update get_or_create update_or_create
    insert_one insert_many find_one update_one update_many delete_one delete_many replace_one
    bulk_write scalars scalar perform clone_from pull push goto click fill screenshot
    new_page launch find_element find_elements wait_for_selector to_csv to_parquet to_sql
    to_excel to_feather to_pickle read_sql read_csv read_parquet read_excel sync_all
    messages_create acreate charge refund
    """
)

# Words that name a client, a session or a connection in a receiver's name.
_CLIENT_WORDS = _names(
    """
    client clients session sess conn connection db database cursor cur api http https s3 sqs
    sns ses dynamo dynamodb bucket blob storage producer consumer channel redis repo sftp ssh
    ftp smtp mailer mail driver browser page llm openai anthropic chat completions engine pool
    transport socket sock stub grpc es elastic kafka mq rabbit bot slack twilio stripe gateway
    webhook github gitlab jira notion mongo collection coll bq bigquery pubsub publisher
    subscriber firestore vault ldap k8s kube docker gpt claude gemini payments payment
    """
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def suspicious(call: ast.Call) -> bool:
    """Whether a call the analyser could not type may be I/O (see the module docstring)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False  # a bare name (a callback, a parameter): too generic to watch
    method = func.attr
    if method in PURE_METHODS or method.startswith("_"):
        return False
    receiver = func.value
    if isinstance(receiver, ast.Constant | ast.JoinedStr | ast.List | ast.Dict | ast.Set):
        return False
    if method in _IO_VERBS:
        return True
    return any(word in _CLIENT_WORDS for word in _receiver_words(receiver))


def _receiver_words(node: ast.expr) -> list[str]:
    words: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            words += _words(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript | ast.Await):
            node = node.value
        elif isinstance(node, ast.Name):
            return words + _words(node.id)
        else:
            return words


def _words(name: str) -> list[str]:
    return [w.lower() for part in name.split("_") for w in _WORD.findall(part)]
