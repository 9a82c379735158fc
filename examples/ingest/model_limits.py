"""The model provider's limits, and the queue's limits that keep within them.

Plain numbers, in a module of their own, so that the demo reads them without
importing the workflows.
"""

# The provider allows at most 8 calls at once and 60 a second; beyond them it
# answers 429 Too Many Requests (llm_endpoint.py does too).
MODEL_MAX_IN_FLIGHT = 8
MODEL_MAX_PER_SECOND = 60

# The queue `summaries` keeps all the workers together within them:
# - A document is at the model only while its workflow runs, and the queue never
#   runs more than CONCURRENCY at once: the provider's own limit fits exactly.
# - The rate counts workflows *started*. A call reaches the model a few
#   milliseconds after its workflow started (more on a busy machine), and
#   starts come in small batches, so a one-second window at the model can hold
#   a few more calls than were started in any one second; and a workflow
#   resumed after its worker was killed calls again without starting again.
#   So the rate leaves a fifth of the provider's limit as a margin.
# - At most WORKER_CONCURRENCY on one worker process spreads the documents over
#   the workers (three workers have room for 12).
CONCURRENCY = MODEL_MAX_IN_FLIGHT
WORKER_CONCURRENCY = 4
RATE = "48/s"
