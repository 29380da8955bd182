"""Pull-request review, the pure parts: which IaC changed and which roots it affects (changes.py),
what terraform fmt/validate and Checkov said (tools.py), and the comment (render.py, Jinja2).
The agent that runs git, terraform and Checkov is dispatcher/agents/pr_review.py."""
