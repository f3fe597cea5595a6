"""The web console that `crmflow serve` serves at /console: the API's data as pages, behind the API's roles.

Every page asks the API's own functions (workers.api.reads, processes, auth.Principal) for what it shows,
so a role sees in the browser exactly what its token reads over HTTP.
"""
