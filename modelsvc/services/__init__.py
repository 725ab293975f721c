"""The model loop's services, one module per concern (torch-free; the runtimes load on the worker):

    versions.py      the registry: versions, the active one, registration, artifacts
    prelabel.py      suggestions and priorities for the open items, in chunks on the worker
    explanations.py  occlusion attributions of a suggestion, ahead of time and on demand
    training.py      training runs: split -> train -> evaluate -> register and promote; the trigger
    schedules.py     per-project training schedules (django-celery-beat)

Each imports the tasks it queues (modelsvc.tasks); the tasks import their service inside the task body.
"""
