from aigc.cli.main import app

app()
