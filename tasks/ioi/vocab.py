"""Fixed IOI vocabularies. Order matters: splits are by index (eval IO/S names come from the first
half of NAMES, counterfactual names from the second half), so never reorder or insert in the middle;
append and bump the task version instead.

Every entry is a single GPT-2 token when preceded by a space (checked against the real GPT-2
vocabulary in tests/test_ioi_vocab.py).
"""

NAMES = tuple(
    """
    Mary John Michael David James Robert William Richard Thomas Charles Daniel Matthew Anthony Mark
    Paul Steven Andrew Kenneth Joshua Kevin Brian George Edward Ronald Timothy Jason Jeffrey Ryan
    Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Frank
    Gregory Raymond Alexander Patrick Jack Dennis Jerry Tyler Aaron Jose Adam Henry Nathan Douglas
    Peter Kyle Walter Ethan Jeremy Harold Keith Christian Roger Noah Gerald Carl Terry Sean Austin
    Arthur Lawrence Jesse Dylan Bryan Joe Jordan Billy Bruce Albert Willie Gabriel Logan Alan Juan
    Wayne Roy Ralph Randy Eugene Vincent Russell Elijah Louis Bobby Philip Johnny Patricia Jennifer
    Linda Elizabeth Barbara Susan Jessica Sarah Karen Nancy Lisa Betty Margaret Sandra Ashley
    Kimberly Emily Donna Michelle Dorothy Carol Amanda Melissa Deborah Stephanie Rebecca Sharon
    Laura Cynthia Kathleen Amy Shirley Angela Helen Anna Brenda Pamela Nicole Emma Samantha
    Katherine Christine Rachel Catherine Carolyn Janet Ruth Maria Heather Diane Virginia Julie Joyce
    Victoria Olivia Kelly Christina Lauren Joan Judith Megan Cheryl Andrea Hannah Martha Frances
    Gloria Ann Teresa Kathryn Sara Jean Alice Madison Julia Judy Grace Denise Amber Marilyn Beverly
    Danielle Theresa Sophia Marie Diana Brittany Natalie Charlotte Rose Alexis Max Leo Sam Tom Ben
    Tim Alex Dan Chris Mike Jim Bob
    """.split()
)

OBJECTS = tuple(
    """
    ball book bottle box bag basket bell bike bowl brush bucket cake camera candle card chair clock
    coat comb cookie cup desk dish doll drink drum egg fan flag flower fork game gift glass glove
    guitar hammer hat helmet jacket jar key knife lamp letter lock map mask medal mirror mug
    necklace note notebook package pan paper pen pencil phone piano picture pie pillow plant plate
    poster present puzzle radio ring rock rope ruler sandwich scarf shirt shoe sock spoon stamp
    stick stone sweater sword table tape ticket toy towel tray trophy wallet watch wheel whistle
    banana candy coin shell feather ribbon blanket button carrot cherry lemon peach pear potato
    tomato bread cheese sausage pizza burger cable battery charger laptop tablet keyboard mouse
    monitor speaker microphone magazine newspaper novel poem song photo painting sculpture statue
    bracelet crown leaf seed nut bean pepper onion garlic grape bun taco salad soup stew
    """.split()
)

PLACES = tuple(
    """
    store park school office house garden church library hospital station restaurant hotel cafe
    market bank beach farm zoo museum theater gym pool kitchen shop mall airport factory bakery bar
    club court field forest island lake mountain river street village town city castle palace temple
    cottage cabin barn shed garage studio lab clinic prison camp harbor port dock bridge tower hall
    arena stadium stage plaza square pier bay valley desert jungle cave ranch lodge inn pub
    """.split()
)
