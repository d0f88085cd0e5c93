from datareach.cli import main

raise SystemExit(main())
