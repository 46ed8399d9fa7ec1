"""What is drawn: one function per paper figure and the tables beside them (`plots`), each notebook's figures from the
registry (`draw`), and the HTML report (`report`)."""
